//! Config errors a person can act on: `file:line:col: message; hint`.
//!
//! Every error carries a byte span into the *original* file text (before
//! `${VAR}` interpolation); [`SourceText`] turns that into a line and column.

use std::fmt;
use std::ops::Range;
use std::path::{Path, PathBuf};

/// One problem found in a config file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    pub file: PathBuf,
    /// 1-based line and column; 0 when the error has no position (e.g. the
    /// file could not be read).
    pub line: usize,
    pub col: usize,
    pub message: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.line == 0 {
            write!(f, "{}: {}", self.file.display(), self.message)
        } else {
            write!(
                f,
                "{}:{}:{}: {}",
                self.file.display(),
                self.line,
                self.col,
                self.message
            )
        }
    }
}

impl std::error::Error for ConfigError {}

/// All errors of one load, in file order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigErrors(pub Vec<ConfigError>);

impl fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.0.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{e}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigErrors {}

/// The original text of a config file, for turning spans into positions.
#[derive(Debug, Clone)]
pub struct SourceText {
    pub file: PathBuf,
    pub text: String,
    /// Maps positions in the interpolated text back to the original:
    /// `(interpolated_start, original_start)` at each substitution boundary,
    /// sorted by the first element.
    pub(crate) shifts: Vec<(usize, usize)>,
}

impl SourceText {
    pub fn new(file: &Path, text: String) -> SourceText {
        SourceText {
            file: file.to_path_buf(),
            text,
            shifts: Vec::new(),
        }
    }

    /// Original byte offset of a position in the interpolated text.
    pub fn original_offset(&self, pos: usize) -> usize {
        match self.shifts.partition_point(|&(i, _)| i <= pos) {
            0 => pos,
            n => {
                let (i, o) = self.shifts[n - 1];
                o + (pos - i)
            }
        }
    }

    /// 1-based (line, column) of an original byte offset; the column counts
    /// characters, as editors do.
    pub fn line_col(&self, offset: usize) -> (usize, usize) {
        let offset = offset.min(self.text.len());
        let before = &self.text[..floor_char_boundary(&self.text, offset)];
        let line = before.matches('\n').count() + 1;
        let line_start = before.rfind('\n').map_or(0, |p| p + 1);
        let col = before[line_start..].chars().count() + 1;
        (line, col)
    }

    /// An error at an original-text span.
    pub fn error_at(&self, span: Option<Range<usize>>, message: impl Into<String>) -> ConfigError {
        let (line, col) = span.map_or((0, 0), |s| self.line_col(s.start));
        ConfigError {
            file: self.file.clone(),
            line,
            col,
            message: message.into(),
        }
    }

    /// An error at a span of the interpolated text (what the TOML parser and
    /// `toml::Spanned` report).
    pub fn error_at_parsed(
        &self,
        span: Option<Range<usize>>,
        message: impl Into<String>,
    ) -> ConfigError {
        let span = span.map(|s| self.original_offset(s.start)..self.original_offset(s.end));
        self.error_at(span, message)
    }
}

fn floor_char_boundary(s: &str, mut i: usize) -> usize {
    while !s.is_char_boundary(i) {
        i -= 1;
    }
    i
}

/// Add a "did you mean" hint to serde's unknown-field / unknown-variant
/// messages, which list the valid names in backticks.
pub fn with_suggestion(message: &str) -> String {
    let msg = message.trim_end();
    let (what, rest) = if let Some(r) = msg.strip_prefix("unknown field `") {
        ("key", r)
    } else if let Some(r) = msg.strip_prefix("unknown variant `") {
        ("value", r)
    } else {
        return msg.to_string();
    };
    let Some(end) = rest.find('`') else {
        return msg.to_string();
    };
    let given = &rest[..end];
    let candidates: Vec<&str> = rest[end + 1..].split('`').skip(1).step_by(2).collect();
    let best = candidates
        .iter()
        .map(|c| (strsim::jaro_winkler(given, c), *c))
        .filter(|(score, _)| *score > 0.75)
        .max_by(|a, b| a.0.total_cmp(&b.0));
    let valid = candidates
        .iter()
        .map(|c| format!("\"{c}\""))
        .collect::<Vec<_>>()
        .join(", ");
    match best {
        Some((_, c)) => {
            format!("unknown {what} \"{given}\"; did you mean \"{c}\"? (valid: {valid})")
        }
        None if candidates.is_empty() => format!("unknown {what} \"{given}\""),
        None => format!("unknown {what} \"{given}\" (valid: {valid})"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suggests_nearest_key() {
        let m =
            with_suggestion("unknown field `tier_name`, expected one of `name`, `tier`, `include`");
        assert!(m.contains("did you mean \"tier\""), "{m}");
        let m = with_suggestion("unknown variant `sytem`, expected one of `system`, `build`");
        assert!(m.contains("did you mean \"system\""), "{m}");
        let m = with_suggestion("unknown field `zzzzzz`, expected `name`");
        assert!(!m.contains("did you mean"), "{m}");
        assert_eq!(with_suggestion("invalid type"), "invalid type");
    }

    #[test]
    fn line_and_column() {
        let t = SourceText::new(Path::new("a.toml"), "a = 1\nbé = 2\n".into());
        assert_eq!(t.line_col(0), (1, 1));
        assert_eq!(t.line_col(6), (2, 1));
        assert_eq!(t.line_col(9), (2, 3));
    }
}
