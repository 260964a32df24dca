//! The wire log: a transcript as text, decoded and hex, one event a line.

use crate::case::hex::spaced_hex;
use crate::transcript::{EventKind, Transcript};
use crate::wire::describe;

/// Renders every event: time, connection, direction, decoded packet,
/// malformations and hex. Long hex is cut at `max_hex` bytes.
pub fn render(t: &Transcript, max_hex: usize) -> String {
    let mut out = String::new();
    for e in &t.events {
        let ms = e.at.as_secs_f64() * 1000.0;
        let line = match &e.kind {
            EventKind::Opened {
                peer,
                tls,
                websocket,
            } => {
                format!(
                    "opened to {peer}{}{}",
                    if *tls { " (TLS)" } else { "" },
                    websocket
                        .as_ref()
                        .map(|w| format!(", {}", w.summary()))
                        .unwrap_or_default()
                )
            }
            EventKind::Packet {
                dir,
                raw,
                packet,
                malformations,
                by_suite,
            } => {
                let who = if *by_suite { "suite" } else { "peer" };
                let text = packet
                    .as_ref()
                    .map(describe)
                    .unwrap_or_else(|| "undecodable packet".into());
                let mut s = format!("{} {who:<5} {text}", dir.arrow());
                for m in malformations {
                    s.push_str(&format!("\n{:>22}! {}: {}", "", m.rule, m.message));
                }
                let shown = &raw[..raw.len().min(max_hex)];
                let more = if raw.len() > max_hex {
                    format!(" .. (+{} bytes)", raw.len() - max_hex)
                } else {
                    String::new()
                };
                s.push_str(&format!("\n{:>22}[{}{more}]", "", spaced_hex(shown)));
                s
            }
            EventKind::Garbage { dir, raw, reason } => {
                format!("{} garbage: {reason} [{}]", dir.arrow(), spaced_hex(raw))
            }
            EventKind::Closed { by, reason } => {
                format!("closed by {by:?}: {reason}").to_lowercase()
            }
            EventKind::Note { text } => format!("note: {text}"),
        };
        out.push_str(&format!("#{:<3} {ms:>8.1}ms {:<6} {line}\n", e.seq, e.conn));
    }
    out
}
