//! The named line formats of SPEC §9, one small parser per file.
//!
//! Two families:
//! - *container* formats ([`cri`], [`docker`]) wrap an application's line
//!   with the runtime's timestamp, the stream (`stdout`/`stderr`) and
//!   whether the line is complete. They are unwrapped before anything else
//!   (`pipeline::records` joins partial lines per stream) and the inner text
//!   is then normalized as `auto`;
//! - *text* formats ([`syslog`], [`combined`], [`klog`]) say where the
//!   timestamp, the level and a few structured fields are; the
//!   [`Normalizer`](super::Normalizer) maps them onto the event.
//!
//! Every parser borrows from the line and returns `None` on the first byte
//! that does not fit, so `auto` can try them in turn on every line for the
//! price of a few comparisons. None of them allocates except where a value
//! has to be unescaped (a docker `log` with escapes).

pub mod combined;
pub mod cri;
pub mod docker;
pub mod klog;
pub mod syslog;

/// A container's output stream.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Stream {
    Stdout,
    Stderr,
}

impl Stream {
    /// The name used as the event's `src` (SPEC §1).
    pub fn as_str(self) -> &'static str {
        match self {
            Stream::Stdout => "stdout",
            Stream::Stderr => "stderr",
        }
    }

    pub fn parse(s: &str) -> Option<Stream> {
        match s {
            "stdout" => Some(Stream::Stdout),
            "stderr" => Some(Stream::Stderr),
            _ => None,
        }
    }
}

/// One container-runtime line, unwrapped.
#[derive(Clone, Debug, PartialEq)]
pub struct ContainerLine<'a> {
    /// When the runtime received the line (epoch ms), if written.
    pub ts: Option<i64>,
    pub stream: Stream,
    /// More of the same line follows (CRI `P`, docker `log` without `\n`).
    pub partial: bool,
    /// The application's text, without the runtime's newline.
    pub text: std::borrow::Cow<'a, str>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Format;
    use crate::event::{Event, Tier};
    use crate::normalize::Normalizer;
    use proptest::prelude::*;

    /// Lines that look almost like each format, mutated: no parser panics,
    /// and every format's normalizer turns any line into an event.
    fn near_lines() -> impl Strategy<Value = String> {
        let seeds = prop::sample::select(vec![
            "2026-11-22T03:49:44.669794202Z stdout P x",
            r#"{"log":"a\n","stream":"stderr","time":"2026-11-22T03:49:44Z"}"#,
            "<165>1 2026-11-22T03:49:44.003Z h a 1 ID [x y=\"]\"] m",
            "<34>Nov 22 03:49:44 web-1 sshd[2211]: m",
            r#"1.2.3.4 - - [22/Nov/2026:03:49:44 +0000] "GET / HTTP/1.1" 200 1 "-" "a""#,
            "E1122 03:49:44.123456 1 a.go:1] m",
        ]);
        (seeds, any::<usize>(), any::<usize>(), "\\PC{0,6}").prop_map(|(s, cut, at, ins)| {
            let cut = cut % (s.len() + 1);
            let mut t: String = s.chars().take(cut).collect();
            let at = at % (t.chars().count() + 1);
            let head: String = t.chars().take(at).collect();
            let tail: String = t.chars().skip(at).collect();
            t = format!("{head}{ins}{tail}");
            t
        })
    }

    proptest! {
        #[test]
        fn parsers_never_panic(line in prop_oneof![near_lines(), "\\PC{0,80}"]) {
            let _ = cri::parse(&line);
            let _ = docker::parse(&line);
            let _ = syslog::parse(&line, 1_795_319_384_000);
            let _ = combined::parse(&line);
            let _ = klog::parse(&line, 1_795_319_384_000);
            for f in Format::ALL {
                let n = Normalizer::plain("app", Tier::System, f, "h");
                let mut ev = Event::empty(Tier::System);
                n.normalize(&line, 1_795_319_384_000, &[], &mut ev);
                let _ = n.container(&line);
            }
        }
    }
}
