//! A fast keyed hasher for the small keys of hot per-packet maps (socket
//! address pairs, packet-id queues, connection names).
//!
//! std's SipHash dominated `analyze` profiles. This folds 8-byte words with
//! a multiply-and-rotate step (as FxHash does) and starts from a per-map
//! random seed, so the buckets of crafted keys differ from run to run.

use std::hash::{BuildHasher, Hasher};

/// Multiplier of FxHash (odd, with well spread bits).
const K: u64 = 0xf135_7aea_2e62_a9c5;

/// The hasher state.
#[derive(Debug, Clone, Copy)]
pub struct FastHasher {
    h: u64,
}

impl FastHasher {
    #[inline]
    fn add(&mut self, w: u64) {
        self.h = (self.h ^ w).wrapping_mul(K).rotate_left(26);
    }
}

impl Hasher for FastHasher {
    #[inline]
    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for c in &mut chunks {
            let mut w = [0u8; 8];
            w.copy_from_slice(c);
            self.add(u64::from_le_bytes(w));
        }
        let rest = chunks.remainder();
        if !rest.is_empty() {
            let mut w = [0u8; 8];
            w[..rest.len()].copy_from_slice(rest);
            self.add(u64::from_le_bytes(w) ^ ((rest.len() as u64) << 59));
        }
    }
    #[inline]
    fn write_u8(&mut self, i: u8) {
        self.add(u64::from(i));
    }
    #[inline]
    fn write_u16(&mut self, i: u16) {
        self.add(u64::from(i));
    }
    #[inline]
    fn write_u32(&mut self, i: u32) {
        self.add(u64::from(i));
    }
    #[inline]
    fn write_u64(&mut self, i: u64) {
        self.add(i);
    }
    #[inline]
    fn write_usize(&mut self, i: usize) {
        self.add(i as u64);
    }
    #[inline]
    fn finish(&self) -> u64 {
        // Final avalanche so the low bits hashbrown uses depend on every word.
        let mut x = self.h;
        x ^= x >> 33;
        x = x.wrapping_mul(0xff51_afd7_ed55_8ccd);
        x ^= x >> 33;
        x
    }
}

/// Builds [`FastHasher`]s from a random per-map seed.
#[derive(Debug, Clone, Copy)]
pub struct FastState {
    seed: u64,
}

impl Default for FastState {
    fn default() -> Self {
        FastState {
            seed: std::collections::hash_map::RandomState::new().hash_one(0x5eed_u64),
        }
    }
}

impl BuildHasher for FastState {
    type Hasher = FastHasher;
    #[inline]
    fn build_hasher(&self) -> FastHasher {
        FastHasher { h: self.seed }
    }
}

/// A `HashMap` with [`FastState`].
pub type FastMap<K, V> = std::collections::HashMap<K, V, FastState>;
/// A `HashSet` with [`FastState`].
pub type FastSet<K> = std::collections::HashSet<K, FastState>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn equal_keys_hash_equal_and_maps_work() {
        let s = FastState::default();
        assert_eq!(s.hash_one(("conn-1", 7u16)), s.hash_one(("conn-1", 7u16)));
        assert_ne!(s.hash_one("conn-1"), s.hash_one("conn-2"));
        let mut m: FastMap<(u8, u16), usize> = FastMap::default();
        for i in 0..1000u16 {
            m.insert(((i % 3) as u8, i), usize::from(i));
        }
        assert_eq!(m.len(), 1000);
        assert_eq!(m.get(&(1, 7)), Some(&7));
        assert_eq!(m.get(&(0, 7)), None);
    }
}
