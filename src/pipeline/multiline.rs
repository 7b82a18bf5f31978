//! Which lines belong together: the rules of `[sources.multiline]`.
//!
//! A [`Rules`] answers one question per line — does it begin a record, join
//! the record before it, or stand alone — and keeps no lines itself (the
//! assembler, `pipeline::records`, holds them and owns the limits and the
//! checkpoint rules). Each open record carries a small [`Shape`]: which
//! stack-trace shape its lines have shown so far, because some lines only
//! join inside a trace (a blank line in a Python traceback or a Go
//! goroutine dump, `main.main()` after `goroutine 1 [running]:`) and would
//! be ordinary lines elsewhere.
//!
//! The language presets are data: [`PRESETS`] lists, per language, line
//! patterns and what they do. `auto` uses all of them. The patterns are
//! anchored and most are plain prefixes; a line starting with a digit (the
//! usual timestamp) or `{` is decided before any of them runs, so the
//! common case costs a byte comparison.
//!
//! Invariant: a JSON or logfmt line never joins a record, and neither
//! starts one that others join — it stands alone.

use std::sync::OnceLock;

use regex::Regex;

use crate::config::{MultilineConfig, MultilineMode};
use crate::normalize::logfmt;

/// What a line does to the record before it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Class {
    /// Begins a new record (the open one, if any, is complete).
    Start,
    /// Joins the open record (or begins one if none is open).
    Join,
    /// Joins as a stack-trace line (a frame, `Caused by:`, a traceback's
    /// final line): the record is a trace.
    Frame,
    /// A record of its own: JSON or logfmt.
    Single,
}

/// The stack-trace shape an open record has shown.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Shape {
    #[default]
    Plain,
    /// Inside a Python traceback's frames: the next unindented line is the
    /// final `XxxError: ...` line.
    PyFrames,
    /// After a traceback's final line: only the chaining lines
    /// (`During handling ...`, blank lines) still join.
    PyEnded,
    /// A Go panic or goroutine dump.
    Go,
}

/// A line pattern of a preset.
#[derive(Clone, Copy, Debug)]
enum Pat {
    /// Starts with this.
    Prefix(&'static str),
    /// Starts with whitespace, then this.
    Indented(&'static str),
    /// Anchored regex (compiled once per process).
    Re(usize),
}

/// What a matching line does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Effect {
    /// Joins any open record.
    Join,
    /// Joins only a record of this shape.
    JoinIn(Shape),
    /// Joins and gives the record this shape.
    JoinAs(Shape),
    /// Begins a record of this shape.
    StartAs(Shape),
}

type Rule = (Pat, Effect);

/// Regexes of the presets, by index (see [`Pat::Re`]).
const REGEXES: [&str; 8] = [
    // 0: Java/.NET/Scala exception header continuing a log line:
    //    `java.lang.IllegalStateException: boom`, `System.IO.IOException`.
    r"^(?:[A-Za-z_$][\w$]*\.)+[A-Za-z_$][\w$]*(?:Exception|Error|Throwable|Fault)(?::\s|$)",
    // 1: `... 12 more`, `... 3 common frames omitted`
    r"^\s*\.\.\. \d+ (?:more|common frames omitted)",
    // 2: Go goroutine header.
    r"^goroutine \d+ \[[^\]]*\]:$",
    // 3: Go function line in a dump: `main.main()`, `net/http.(*conn).serve(0xc000)`.
    r"^[\w.\-/]+(?:\.\(\*?[\w.]+\))?[\w.\-/]*\([^)]*\)$",
    // 4: PHP frame `#0 /var/www/a.php(12): f()`, `#1 {main}`; chained `Next X: `.
    r"^(?:#\d+ |Next [A-Za-z_\\][\w\\]*: )",
    // 5: JavaScript error header after a log line: `TypeError: x`, `Error [ERR_X]: y`.
    r"^[A-Z]?[A-Za-z]*Error(?: \[[\w]+\])?: ",
    // 6: Ruby backtrace frame without `from`: `/app/models/a.rb:42:in 'total'`.
    r"^[^\s:]+:\d+:in [`']",
    // 7: Java's `at` frame also after a tab-less indent of one space or more.
    r"^\s+at [\w$.<>/]+\(",
];

fn regex(i: usize) -> &'static Regex {
    static RES: OnceLock<Vec<Regex>> = OnceLock::new();
    &RES.get_or_init(|| {
        REGEXES
            .iter()
            .map(|r| Regex::new(r).unwrap_or_else(|e| unreachable!("preset regex {r}: {e}")))
            .collect()
    })[i]
}

use Effect::*;
use Pat::*;

/// The language presets: `(mode, rules)`. Every preset also joins indented
/// lines (see [`Rules::classify`]).
const PRESETS: &[(MultilineMode, &[Rule])] = &[
    (
        MultilineMode::Java,
        &[
            (Indented("at "), Join),
            (Re(1), Join),
            (Prefix("Caused by: "), Join),
            (Indented("Suppressed: "), Join),
            (Re(0), Join),
        ],
    ),
    (
        MultilineMode::Python,
        &[
            (
                Prefix("Traceback (most recent call last):"),
                JoinAs(Shape::PyFrames),
            ),
            (
                Prefix("During handling of the above exception"),
                JoinIn(Shape::PyEnded),
            ),
            (
                Prefix("The above exception was the direct cause"),
                JoinIn(Shape::PyEnded),
            ),
        ],
    ),
    (
        MultilineMode::Go,
        &[
            (Prefix("panic: "), StartAs(Shape::Go)),
            (Prefix("fatal error: "), StartAs(Shape::Go)),
            (Re(2), JoinAs(Shape::Go)),
            (Prefix("created by "), JoinIn(Shape::Go)),
            (Prefix("[signal "), JoinIn(Shape::Go)),
            (Prefix("exit status "), JoinIn(Shape::Go)),
            (Re(3), JoinIn(Shape::Go)),
        ],
    ),
    (
        MultilineMode::Node,
        &[
            (Re(7), Join),
            (Indented("at "), Join),
            (Re(5), Join),
            // The closing brace of an error's own properties.
            (Prefix("}"), Join),
        ],
    ),
    (
        MultilineMode::Ruby,
        &[(Indented("from "), Join), (Re(6), Join)],
    ),
    (
        MultilineMode::Php,
        &[
            (Prefix("Stack trace:"), Join),
            (Prefix("PHP Stack trace:"), Join),
            // Laravel / Monolog: `[stacktrace]`, `[previous exception] ...`.
            (Prefix("[stacktrace]"), Join),
            (Prefix("[previous exception]"), Join),
            (Re(4), Join),
            (Indented("thrown in "), Join),
        ],
    ),
    (
        MultilineMode::Dotnet,
        &[
            (Indented("at "), Join),
            (Indented("---> "), Join),
            (Prefix("---> "), Join),
            (Indented("--- End of "), Join),
            (Prefix("--- End of "), Join),
            (Prefix("File name: "), Join),
            (Re(0), Join),
        ],
    ),
];

/// Why a `[sources.multiline]` table cannot be used.
#[derive(Debug, Clone, thiserror::Error)]
pub enum MultilineError {
    #[error("invalid `{key}` regex: {error}")]
    Regex {
        key: &'static str,
        #[source]
        error: regex::Error,
    },
    #[error("mode = \"custom\" needs `start` or `continue` (a regex)")]
    CustomWithoutPattern,
    #[error("`{0}` is only used with mode = \"custom\"; remove it or set mode = \"custom\"")]
    PatternWithoutCustom(&'static str),
}

/// The compiled rules of one source.
#[derive(Clone, Debug)]
pub struct Rules {
    mode: MultilineMode,
    rules: Vec<Rule>,
    start: Option<Regex>,
    cont: Option<Regex>,
}

impl Rules {
    /// Compile `cfg` (its limits are read by the assembler).
    pub fn new(cfg: &MultilineConfig) -> Result<Rules, MultilineError> {
        let mode = *cfg.mode.get_ref();
        let compile = |key, s: &Option<toml::Spanned<String>>| {
            s.as_ref()
                .map(|s| Regex::new(s.get_ref()))
                .transpose()
                .map_err(|error| MultilineError::Regex { key, error })
        };
        let start = compile("start", &cfg.start)?;
        let cont = compile("continue", &cfg.continue_)?;
        if mode == MultilineMode::Custom && start.is_none() && cont.is_none() {
            return Err(MultilineError::CustomWithoutPattern);
        }
        if mode != MultilineMode::Custom {
            if start.is_some() {
                return Err(MultilineError::PatternWithoutCustom("start"));
            }
            if cont.is_some() {
                return Err(MultilineError::PatternWithoutCustom("continue"));
            }
        }
        let rules = PRESETS
            .iter()
            .filter(|(m, _)| mode == MultilineMode::Auto || *m == mode)
            .flat_map(|(_, r)| r.iter().copied())
            .collect();
        // Compile the presets' regexes now, not on the first line.
        let _ = regex(0);
        Ok(Rules {
            mode,
            rules,
            start,
            cont,
        })
    }

    /// Classify `line` given the open record's shape (`None`: no record is
    /// open). A `Join` or `Start` may update `shape` for the record the line
    /// ends up in.
    pub fn classify(&self, open: Option<Shape>, line: &str, shape: &mut Shape) -> Class {
        let b = line.as_bytes();
        let first = b.first().copied().unwrap_or(b' ');
        // A whole JSON object on one line stands alone; a line that only
        // opens one (`{` of a pretty-printed value) begins a record its
        // indented lines and closing `}` join.
        if first == b'{' {
            return if line.trim_end().ends_with('}') {
                Class::Single
            } else {
                *shape = Shape::Plain;
                Class::Start
            };
        }
        if logfmt::looks_like(line) && logfmt::parse(line).is_some() {
            return Class::Single;
        }
        if self.mode == MultilineMode::Custom {
            return self.custom(line);
        }
        *shape = open.unwrap_or_default();
        if first.is_ascii_digit() {
            *shape = Shape::Plain;
            return Class::Start;
        }
        // Python's final line: the first unindented line after the frames.
        if open == Some(Shape::PyFrames) && !first.is_ascii_whitespace() && !line.is_empty() {
            *shape = Shape::PyEnded;
            return Class::Frame;
        }
        if open == Some(Shape::PyEnded) && line.starts_with("Traceback (most recent call last):") {
            *shape = Shape::PyFrames;
            return Class::Frame;
        }
        for &(pat, effect) in &self.rules {
            if !matches(pat, line) {
                continue;
            }
            match effect {
                Join => return Class::Frame,
                JoinIn(s) if open == Some(s) => return Class::Frame,
                JoinIn(_) => {}
                JoinAs(s) => {
                    *shape = s;
                    return Class::Frame;
                }
                StartAs(s) => {
                    *shape = s;
                    return Class::Start;
                }
            }
        }
        // Indented and blank lines continue whatever they follow: frames,
        // wrapped messages, the blank lines of a Python chain or a Go dump
        // (trailing blank lines are dropped when the record is complete).
        if first.is_ascii_whitespace() {
            return Class::Join;
        }
        *shape = Shape::Plain;
        Class::Start
    }

    /// `continue` matching joins; else `start` matching (or absent) begins;
    /// else the line joins (it is not a start).
    fn custom(&self, line: &str) -> Class {
        if self.cont.as_ref().is_some_and(|r| r.is_match(line)) {
            return Class::Join;
        }
        match &self.start {
            Some(r) if !r.is_match(line) => Class::Join,
            _ => Class::Start,
        }
    }
}

fn matches(pat: Pat, line: &str) -> bool {
    match pat {
        Prefix(p) => line.starts_with(p),
        Indented(p) => {
            let t = line.trim_start();
            t.len() < line.len() && t.starts_with(p)
        }
        Re(i) => regex(i).is_match(line),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::MultilineConfig;

    fn rules(mode: MultilineMode) -> Rules {
        Rules::new(&MultilineConfig::with_mode(mode)).unwrap()
    }

    /// Group lines as the assembler would: by classification only.
    fn group(r: &Rules, lines: &[&str]) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        let mut open: Option<Shape> = None;
        for l in lines {
            let mut shape = Shape::Plain;
            match r.classify(open, l, &mut shape) {
                Class::Join | Class::Frame if open.is_some() => {
                    let last = out.last_mut().unwrap();
                    last.push('\n');
                    last.push_str(l);
                    open = Some(shape);
                }
                Class::Single => {
                    out.push(l.to_string());
                    open = None;
                }
                _ => {
                    out.push(l.to_string());
                    open = Some(shape);
                }
            }
        }
        for r in &mut out {
            r.truncate(r.trim_end_matches('\n').len());
        }
        out
    }

    #[test]
    fn java_chained() {
        let lines = [
            "2026-11-22 03:49:44.120 ERROR [main] c.e.Api - request failed",
            "java.lang.IllegalStateException: outer",
            "\tat com.example.Api.handle(Api.java:42)",
            "\t... 12 more",
            "Caused by: java.io.IOException: inner",
            "\tat com.example.Db.q(Db.java:7)",
            "\t... 3 common frames omitted",
            "2026-11-22 03:49:45.000 INFO [main] c.e.Api - next",
        ];
        for mode in [MultilineMode::Java, MultilineMode::Auto] {
            let g = group(&rules(mode), &lines);
            assert_eq!(g.len(), 2, "{mode:?}: {g:#?}");
            assert_eq!(g[0].lines().count(), 7);
        }
    }

    #[test]
    fn python_chained_and_final_line() {
        let lines = [
            "Traceback (most recent call last):",
            "  File \"a.py\", line 3, in <module>",
            "    f()",
            "KeyError: 'x'",
            "",
            "During handling of the above exception, another exception occurred:",
            "",
            "Traceback (most recent call last):",
            "  File \"a.py\", line 5, in <module>",
            "ValueError: bad",
            "INFO: next request",
            "",
        ];
        for mode in [MultilineMode::Python, MultilineMode::Auto] {
            let g = group(&rules(mode), &lines);
            assert_eq!(g.len(), 2, "{mode:?}: {g:#?}");
            assert!(g[0].ends_with("ValueError: bad"));
            assert_eq!(g[1], "INFO: next request");
        }
    }

    #[test]
    fn go_dump_and_plain_blank_lines() {
        let lines = [
            "panic: runtime error: index out of range [5] with length 3",
            "",
            "goroutine 1 [running]:",
            "main.main()",
            "\t/app/main.go:12 +0x1d",
            "net/http.(*conn).serve(0xc000122000, {0x7a3c40, 0xc00009e000})",
            "created by net/http.(*Server).Serve in goroutine 1",
            "exit status 2",
            "listening on :8080",
            "",
        ];
        let g = group(&rules(MultilineMode::Go), &lines);
        assert_eq!(g.len(), 2, "{g:#?}");
        assert_eq!(g[0].lines().count(), 8);
        assert_eq!(g[1], "listening on :8080");
    }

    #[test]
    fn json_and_logfmt_never_join() {
        let r = rules(MultilineMode::Auto);
        let mut s = Shape::Plain;
        assert_eq!(
            r.classify(Some(Shape::Plain), "{\"msg\":\"x\"}", &mut s),
            Class::Single
        );
        assert_eq!(
            r.classify(Some(Shape::Plain), "level=info msg=x", &mut s),
            Class::Single
        );
        assert_eq!(
            r.classify(Some(Shape::Plain), "    at x.y(Z.java:1)", &mut s),
            Class::Frame
        );
        assert_eq!(
            r.classify(Some(Shape::Plain), "    wrapped text", &mut s),
            Class::Join
        );
    }

    #[test]
    fn pretty_printed_json_is_one_record() {
        let g = group(
            &rules(MultilineMode::Auto),
            &[
                "{",
                "  \"a\": 1,",
                "  \"b\": [2, 3]",
                "}",
                "{\"c\":4}",
                "next",
            ],
        );
        assert_eq!(
            g,
            ["{\n  \"a\": 1,\n  \"b\": [2, 3]\n}", "{\"c\":4}", "next"]
        );
    }

    #[test]
    fn custom_patterns_and_errors() {
        let mut cfg = MultilineConfig::with_mode(MultilineMode::Custom);
        assert!(matches!(
            Rules::new(&cfg),
            Err(MultilineError::CustomWithoutPattern)
        ));
        cfg.start = Some(toml::Spanned::new(0..0, r"^\[".into()));
        let r = Rules::new(&cfg).unwrap();
        assert_eq!(group(&r, &["[1] a", "b", "c", "[2] d"]).len(), 2);
        cfg.start = Some(toml::Spanned::new(0..0, "(".into()));
        assert!(matches!(
            Rules::new(&cfg),
            Err(MultilineError::Regex { key: "start", .. })
        ));
        let mut cfg = MultilineConfig::with_mode(MultilineMode::Java);
        cfg.continue_ = Some(toml::Spanned::new(0..0, "x".into()));
        assert!(Rules::new(&cfg).is_err());
    }
}
