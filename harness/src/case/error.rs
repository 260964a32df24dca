//! Errors in case files, pointing at file:line:column with a source snippet.

use miette::{Diagnostic, NamedSource, SourceSpan};
use std::fmt;

/// A problem in a case or fixture file, with where it is.
#[derive(Debug, Clone)]
pub struct CaseError {
    /// File path as given to the loader.
    pub path: String,
    /// 1-based line, 0 when unknown.
    pub line: u64,
    /// 1-based column, 0 when unknown.
    pub column: u64,
    /// What is wrong.
    pub message: String,
    /// File text and byte span for the fancy rendering.
    src: Option<Box<(NamedSource<String>, SourceSpan)>>,
}

impl CaseError {
    /// An error at a location of `source` (the text of `path`).
    pub fn at(
        path: &str,
        source: &str,
        line: u64,
        column: u64,
        message: impl Into<String>,
    ) -> Self {
        let offset = byte_offset(source, line, column);
        let src = offset.map(|o| {
            Box::new((
                NamedSource::new(path, source.to_string()).with_language("yaml"),
                SourceSpan::from((o, 1usize.min(source.len().saturating_sub(o)))),
            ))
        });
        CaseError {
            path: path.to_string(),
            line,
            column,
            message: message.into(),
            src,
        }
    }

    /// An error about a whole file (not found, unreadable).
    pub fn file(path: &str, message: impl Into<String>) -> Self {
        CaseError {
            path: path.to_string(),
            line: 0,
            column: 0,
            message: message.into(),
            src: None,
        }
    }
}

fn byte_offset(source: &str, line: u64, column: u64) -> Option<usize> {
    if line == 0 {
        return None;
    }
    let mut off = 0usize;
    for (i, l) in source.split_inclusive('\n').enumerate() {
        if i as u64 + 1 == line {
            let col_bytes: usize = l
                .chars()
                .take(column.saturating_sub(1) as usize)
                .map(char::len_utf8)
                .sum();
            return Some(off + col_bytes);
        }
        off += l.len();
    }
    None
}

impl fmt::Display for CaseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.line > 0 {
            write!(
                f,
                "{}:{}:{}: {}",
                self.path, self.line, self.column, self.message
            )
        } else {
            write!(f, "{}: {}", self.path, self.message)
        }
    }
}

impl std::error::Error for CaseError {}

impl Diagnostic for CaseError {
    fn source_code(&self) -> Option<&dyn miette::SourceCode> {
        self.src.as_ref().map(|b| &b.0 as &dyn miette::SourceCode)
    }
    fn labels(&self) -> Option<Box<dyn Iterator<Item = miette::LabeledSpan> + '_>> {
        self.src.as_ref().map(|b| {
            let span = &b.1;
            Box::new(std::iter::once(miette::LabeledSpan::new_with_span(
                Some("here".to_string()),
                *span,
            ))) as Box<dyn Iterator<Item = miette::LabeledSpan>>
        })
    }
}
