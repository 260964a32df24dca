//! Hex byte text with comments and `??` masks, as written in case files and
//! `fixtures/packets/*.hex`.
//!
//! ```text
//! 10 0d            # CONNECT, remaining length 13
//! 00 04 4d 51 54 54 04
//! ```
//! Whitespace separates nothing in particular: `100d` and `10 0d` are the
//! same. `#` starts a comment that runs to the end of the line. In byte
//! patterns (`expect: { bytes: ... }`) `??` matches any byte and `..` at the
//! end matches any remaining bytes.

/// One position of a byte pattern.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PatByte {
    /// Exactly this byte.
    Exact(u8),
    /// Any byte (`??`).
    Any,
}

/// A byte pattern with `??` masks and an optional open end (`..`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BytePattern {
    /// The positions.
    pub bytes: Vec<PatByte>,
    /// True when the pattern ends in `..`: longer inputs also match.
    pub open_end: bool,
}

fn strip_comments(text: &str) -> String {
    text.lines()
        .map(|l| l.split('#').next().unwrap_or(""))
        .collect::<Vec<_>>()
        .join(" ")
}

/// Parses hex text with comments into bytes. Masks are not allowed here.
pub fn parse_hex(text: &str) -> Result<Vec<u8>, String> {
    let p = parse_pattern(text)?;
    if p.open_end {
        return Err("`..` is only allowed in expected byte patterns".into());
    }
    p.bytes
        .into_iter()
        .map(|b| match b {
            PatByte::Exact(v) => Ok(v),
            PatByte::Any => Err("`??` is only allowed in expected byte patterns".to_string()),
        })
        .collect()
}

/// Parses a byte pattern: hex digits, `??` masks, comments, and an optional trailing `..`.
pub fn parse_pattern(text: &str) -> Result<BytePattern, String> {
    let clean: String = strip_comments(text)
        .chars()
        .filter(|c| !c.is_whitespace())
        .collect();
    let (body, open_end) = match clean.strip_suffix("..") {
        Some(b) => (b.to_string(), true),
        None => (clean, false),
    };
    let chars: Vec<char> = body.chars().collect();
    if !chars.len().is_multiple_of(2) {
        return Err(format!(
            "odd number of hex digits ({}); every byte needs two",
            chars.len()
        ));
    }
    let mut bytes = Vec::with_capacity(chars.len() / 2);
    for (i, pair) in chars.chunks(2).enumerate() {
        if pair == ['?', '?'] {
            bytes.push(PatByte::Any);
            continue;
        }
        let s: String = pair.iter().collect();
        match u8::from_str_radix(&s, 16) {
            Ok(v) => bytes.push(PatByte::Exact(v)),
            Err(_) => return Err(format!("byte {} `{}` is not hex", i + 1, s)),
        }
    }
    Ok(BytePattern { bytes, open_end })
}

impl BytePattern {
    /// Does `data` match? On a mismatch returns the first differing offset.
    pub fn check(&self, data: &[u8]) -> Result<(), String> {
        for (i, p) in self.bytes.iter().enumerate() {
            match (p, data.get(i)) {
                (_, None) => {
                    return Err(format!(
                        "too short: {} bytes, pattern needs {}",
                        data.len(),
                        self.bytes.len()
                    ))
                }
                (PatByte::Exact(want), Some(got)) if want != got => {
                    return Err(format!("byte {i}: expected {want:02x}, got {got:02x}"))
                }
                _ => {}
            }
        }
        if !self.open_end && data.len() > self.bytes.len() {
            return Err(format!(
                "too long: {} bytes, pattern has {}",
                data.len(),
                self.bytes.len()
            ));
        }
        Ok(())
    }

    /// Pattern as text (`20 02 ?? 00`).
    pub fn display(&self) -> String {
        let mut parts: Vec<String> = self
            .bytes
            .iter()
            .map(|b| match b {
                PatByte::Exact(v) => format!("{v:02x}"),
                PatByte::Any => "??".to_string(),
            })
            .collect();
        if self.open_end {
            parts.push("..".into());
        }
        parts.join(" ")
    }
}

/// Formats bytes as spaced lower-case hex (`10 0d 00 04`).
pub fn spaced_hex(data: &[u8]) -> String {
    data.iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use rstest::rstest;

    #[rstest]
    #[case("10 0d # c\n00", vec![0x10, 0x0d, 0x00])]
    #[case("100D", vec![0x10, 0x0d])]
    #[case("", vec![])]
    fn parses_hex(#[case] text: &str, #[case] want: Vec<u8>) {
        assert_eq!(parse_hex(text), Ok(want));
    }

    #[rstest]
    #[case("1")]
    #[case("zz")]
    #[case("10 ??")]
    #[case("10 ..")]
    fn rejects_bad_hex(#[case] text: &str) {
        assert!(parse_hex(text).is_err());
    }

    #[rstest]
    #[case("20 02 ?? 00", &[0x20, 0x02, 0x01, 0x00], true)]
    #[case("20 02 ?? 00", &[0x20, 0x02, 0x01, 0x05], false)]
    #[case("20 02 ?? 00", &[0x20, 0x02, 0x01], false)]
    #[case("20 02 ?? 00", &[0x20, 0x02, 0x01, 0x00, 0x00], false)]
    #[case("30 ..", &[0x30, 0x05, 0x01], true)]
    #[case("30 ..", &[0x31], false)]
    fn byte_patterns(#[case] pat: &str, #[case] data: &[u8], #[case] ok: bool) {
        let p = parse_pattern(pat).expect("pattern");
        assert_eq!(p.check(data).is_ok(), ok, "{pat} vs {data:?}");
    }
}
