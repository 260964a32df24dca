//! A library's adapter process (the "upper tester"): started per case,
//! spoken to in JSON lines over its stdin/stdout (`adapters/PROTOCOL.md`).
//!
//! Everything the adapter prints reaches the case as [`Incoming::Adapter`]
//! items through the case's own channel, so one wait covers the wire and
//! the library. A line that is not protocol JSON, a line over
//! [`MAX_LINE`] bytes, or the end of its output ends the adapter's part:
//! later steps that need it end in `error` with the reason and the last
//! lines of its stderr. Nothing here waits without a time limit.

use super::conn::Incoming;
use serde_json::Value;
use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::process::{Child, ChildStdin, Command};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

/// The protocol version this suite speaks.
pub const PROTOCOL: u64 = 1;
/// Longest line accepted from an adapter.
pub const MAX_LINE: usize = 1 << 20;
/// Lines of the adapter's stderr kept for error reasons.
const STDERR_LINES: usize = 12;

/// How to start an adapter: a program and its arguments.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AdapterCommand {
    /// Program (looked up on PATH like a shell would).
    pub program: String,
    /// Arguments.
    pub args: Vec<String>,
}

impl AdapterCommand {
    /// Parses `python3 adapter.py --flag 'two words'`: words split at
    /// blanks, `'...'` and `"..."` quote, `\` escapes the next character.
    pub fn parse(text: &str) -> Result<AdapterCommand, String> {
        let mut words = Vec::new();
        let mut cur = String::new();
        let mut in_word = false;
        let mut quote: Option<char> = None;
        let mut chars = text.chars();
        while let Some(c) = chars.next() {
            match (quote, c) {
                (Some(q), c) if c == q => quote = None,
                (Some('"') | None, '\\') => {
                    if let Some(n) = chars.next() {
                        cur.push(n);
                        in_word = true;
                    }
                }
                (Some(_), c) => cur.push(c),
                (None, '\'' | '"') => {
                    quote = Some(c);
                    in_word = true;
                }
                (None, c) if c.is_whitespace() => {
                    if in_word {
                        words.push(std::mem::take(&mut cur));
                        in_word = false;
                    }
                }
                (None, c) => {
                    cur.push(c);
                    in_word = true;
                }
            }
        }
        if quote.is_some() {
            return Err(format!("adapter command `{text}`: unclosed quote"));
        }
        if in_word {
            words.push(cur);
        }
        let mut it = words.into_iter();
        let program = it
            .next()
            .ok_or_else(|| "adapter command is empty; write e.g. `adapter:python3 adapters/paho-mqtt/adapter.py`".to_string())?;
        Ok(AdapterCommand {
            program,
            args: it.collect(),
        })
    }

    /// The command as one line (for reports).
    pub fn display(&self) -> String {
        std::iter::once(self.program.as_str())
            .chain(self.args.iter().map(String::as_str))
            .map(|w| {
                if w.contains(char::is_whitespace) || w.is_empty() {
                    format!("'{w}'")
                } else {
                    w.to_string()
                }
            })
            .collect::<Vec<_>>()
            .join(" ")
    }
}

/// What the adapter said about itself.
#[derive(Debug, Clone, Default)]
pub struct Hello {
    /// Library name.
    pub library: String,
    /// Library version.
    pub version: String,
    /// Operations it implements.
    pub operations: Vec<String>,
    /// Features the library has.
    pub features: Vec<String>,
}

impl Hello {
    fn parse(v: &Value) -> Result<Hello, String> {
        if v.get("event").and_then(Value::as_str) != Some("hello") {
            return Err(format!(
                "the first line must be a `hello` event; got {}",
                short(v)
            ));
        }
        match v.get("protocol").and_then(Value::as_u64) {
            Some(PROTOCOL) => {}
            Some(p) => {
                return Err(format!(
                    "the adapter speaks protocol {p}; this suite speaks {PROTOCOL}"
                ))
            }
            None => return Err("`hello` has no `protocol` number".into()),
        }
        let words = |k: &str| -> Vec<String> {
            v.get(k)
                .and_then(Value::as_array)
                .map(|a| {
                    a.iter()
                        .filter_map(Value::as_str)
                        .map(str::to_string)
                        .collect()
                })
                .unwrap_or_default()
        };
        let text = |k: &str| v.get(k).and_then(Value::as_str).unwrap_or("").to_string();
        let library = text("library");
        if library.is_empty() {
            return Err("`hello` names no `library`".into());
        }
        Ok(Hello {
            library,
            version: text("version"),
            operations: words("operations"),
            features: words("features"),
        })
    }

    /// `library version`.
    pub fn label(&self) -> String {
        format!("{} {}", self.library, self.version)
            .trim()
            .to_string()
    }
}

/// What the adapter's output reader saw.
#[derive(Debug)]
pub enum AdapterItem {
    /// One event.
    Event(Value),
    /// The adapter is gone or broke the protocol: why.
    Gone(String),
}

/// A running adapter.
pub struct Adapter {
    child: Child,
    stdin: Option<ChildStdin>,
    reader: JoinHandle<()>,
    stderr: Arc<Mutex<VecDeque<String>>>,
    stderr_task: JoinHandle<()>,
    next_id: u64,
    /// Its `hello`.
    pub hello: Hello,
}

impl Drop for Adapter {
    fn drop(&mut self) {
        self.reader.abort();
        self.stderr_task.abort();
        let _ = self.child.start_kill();
    }
}

fn short(v: &Value) -> String {
    clip(&v.to_string(), 200)
}

/// Reads one `\n`-terminated line of at most `MAX_LINE` bytes; `None` at EOF.
async fn read_line<R: tokio::io::AsyncBufRead + Unpin>(
    r: &mut R,
) -> Result<Option<String>, String> {
    let mut buf = Vec::new();
    let mut limited = r.take(MAX_LINE as u64 + 1);
    let n = limited
        .read_until(b'\n', &mut buf)
        .await
        .map_err(|e| format!("reading the adapter's output failed: {e}"))?;
    if n == 0 {
        return Ok(None);
    }
    if buf.len() > MAX_LINE {
        return Err(format!(
            "the adapter printed a line longer than {MAX_LINE} bytes"
        ));
    }
    String::from_utf8(buf)
        .map(|s| Some(s.trim_end_matches(['\n', '\r']).to_string()))
        .map_err(|_| "the adapter printed a line that is not UTF-8".into())
}

impl Adapter {
    /// Starts `cmd`, waits up to `hello_wait` for its `hello`; afterwards
    /// its events go to `tx` as [`Incoming::Adapter`].
    pub async fn start(
        cmd: &AdapterCommand,
        tx: mpsc::Sender<Incoming>,
        hello_wait: Duration,
    ) -> Result<Adapter, String> {
        let mut child = Command::new(&cmd.program)
            .args(&cmd.args)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| format!("cannot start the adapter `{}`: {e}", cmd.display()))?;
        let stdout = child.stdout.take().ok_or("the adapter has no stdout")?;
        let stderr_pipe = child.stderr.take().ok_or("the adapter has no stderr")?;
        let stdin = child.stdin.take();
        let stderr = Arc::new(Mutex::new(VecDeque::new()));
        let keep = stderr.clone();
        let stderr_task = tokio::spawn(async move {
            let mut r = BufReader::new(stderr_pipe);
            while let Ok(Some(line)) = read_line(&mut r).await {
                let mut q = keep.lock().unwrap_or_else(|e| e.into_inner());
                if q.len() >= STDERR_LINES {
                    q.pop_front();
                }
                q.push_back(clip(&line, 300));
            }
        });
        let mut out = BufReader::new(stdout);
        let first = tokio::time::timeout(hello_wait, read_line(&mut out)).await;
        let tail = |s: &Arc<Mutex<VecDeque<String>>>| stderr_tail(s);
        let hello = match first {
            Err(_) => Err(format!("no `hello` from the adapter within {hello_wait:?}")),
            Ok(Err(e)) => Err(e),
            Ok(Ok(None)) => Err("the adapter exited before its `hello`".to_string()),
            Ok(Ok(Some(line))) => serde_json::from_str::<Value>(&line)
                .map_err(|e| {
                    format!(
                        "the adapter's first line is not JSON ({e}): {}",
                        clip(&line, 160)
                    )
                })
                .and_then(|v| Hello::parse(&v)),
        };
        let hello = match hello {
            Ok(h) => h,
            Err(e) => {
                let _ = child.start_kill();
                // Give stderr a moment to arrive for the reason.
                tokio::time::sleep(Duration::from_millis(100)).await;
                return Err(format!("{e}{}", tail(&stderr)));
            }
        };
        let reader = tokio::spawn(async move {
            loop {
                let item = match read_line(&mut out).await {
                    Ok(None) => {
                        AdapterItem::Gone("the adapter closed its output (it exited)".into())
                    }
                    Err(e) => AdapterItem::Gone(e),
                    Ok(Some(line)) if line.trim().is_empty() => continue,
                    Ok(Some(line)) => match serde_json::from_str::<Value>(&line) {
                        Ok(v) if v.get("event").and_then(Value::as_str).is_some() => {
                            AdapterItem::Event(v)
                        }
                        Ok(_) => AdapterItem::Gone(format!(
                            "the adapter printed an object without `event`: {}",
                            clip(&line, 160)
                        )),
                        Err(e) => AdapterItem::Gone(format!(
                            "the adapter printed a line that is not JSON ({e}): {}",
                            clip(&line, 160)
                        )),
                    },
                };
                let gone = matches!(item, AdapterItem::Gone(_));
                if tx
                    .send(Incoming::Adapter {
                        at: Instant::now(),
                        item,
                    })
                    .await
                    .is_err()
                    || gone
                {
                    return;
                }
            }
        });
        Ok(Adapter {
            child,
            stdin,
            reader,
            stderr,
            stderr_task,
            next_id: 1,
            hello,
        })
    }

    /// The last lines of the adapter's stderr, as `; stderr: ...` (or empty).
    pub fn stderr_tail(&self) -> String {
        stderr_tail(&self.stderr)
    }

    /// Sends `request` (an object with `op`) with the next request number;
    /// returns the line sent.
    pub async fn tell(&mut self, mut request: Value, wait: Duration) -> Result<Value, String> {
        if let Some(m) = request.as_object_mut() {
            m.insert("id".into(), Value::from(self.next_id));
        }
        self.next_id += 1;
        let mut line = request.to_string();
        line.push('\n');
        let Some(stdin) = self.stdin.as_mut() else {
            return Err("the adapter's input is closed".into());
        };
        let sent = tokio::time::timeout(wait, async {
            stdin.write_all(line.as_bytes()).await?;
            stdin.flush().await
        })
        .await;
        match sent {
            Ok(Ok(())) => Ok(request),
            Ok(Err(e)) => Err(format!(
                "cannot write to the adapter: {e}{}",
                self.stderr_tail()
            )),
            Err(_) => Err(format!(
                "the adapter did not read its input within {wait:?}{}",
                self.stderr_tail()
            )),
        }
    }

    /// Asks the adapter to exit, then closes its input and kills it if it
    /// is still there after `grace`.
    pub async fn stop(mut self, grace: Duration) {
        if let Some(mut stdin) = self.stdin.take() {
            let _ = tokio::time::timeout(Duration::from_millis(200), async {
                stdin.write_all(b"{\"op\":\"exit\"}\n").await?;
                stdin.flush().await
            })
            .await;
            drop(stdin);
        }
        if tokio::time::timeout(grace, self.child.wait())
            .await
            .is_err()
        {
            let _ = self.child.start_kill();
            let _ = tokio::time::timeout(Duration::from_secs(1), self.child.wait()).await;
        }
    }
}

fn stderr_tail(s: &Arc<Mutex<VecDeque<String>>>) -> String {
    let q = s.lock().unwrap_or_else(|e| e.into_inner());
    if q.is_empty() {
        String::new()
    } else {
        format!(
            "; adapter stderr: {}",
            q.iter().map(String::as_str).collect::<Vec<_>>().join(" | ")
        )
    }
}

/// `text` cut to at most `max` bytes (at a character boundary), with `...`
/// when cut.
pub fn clip(text: &str, max: usize) -> String {
    if text.len() <= max {
        return text.to_string();
    }
    let mut cut = max;
    while !text.is_char_boundary(cut) {
        cut -= 1;
    }
    format!("{}...", &text[..cut])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands_split_like_a_shell() {
        let c = AdapterCommand::parse("python3 'my dir/a.py' --x \"a b\" c\\ d").expect("parse");
        assert_eq!(c.program, "python3");
        assert_eq!(c.args, vec!["my dir/a.py", "--x", "a b", "c d"]);
        assert!(AdapterCommand::parse("  ").is_err());
        assert!(AdapterCommand::parse("python3 'x").is_err());
        assert_eq!(c.display(), "python3 'my dir/a.py' --x 'a b' 'c d'");
    }

    #[test]
    fn hello_is_checked() {
        let ok = serde_json::json!({"event":"hello","protocol":1,"library":"x","version":"1","operations":["connect"]});
        let h = Hello::parse(&ok).expect("hello");
        assert_eq!(h.operations, vec!["connect"]);
        let v2 = serde_json::json!({"event":"hello","protocol":2,"library":"x"});
        assert!(Hello::parse(&v2).unwrap_err().contains("protocol 2"));
        let other = serde_json::json!({"event":"connack"});
        assert!(Hello::parse(&other).is_err());
    }
}
