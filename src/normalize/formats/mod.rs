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
