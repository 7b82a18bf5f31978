//! Fuzz the per-line path (normalize, redact, cut) for every format: any
//! bytes give one event per line whose `msg` respects the 256 KiB bound and
//! whose NDJSON form is one valid JSON object on one line.
#![no_main]

use libfuzzer_sys::fuzz_target;
use logship::config::Format;
use logship::event::{Event, Tier, MAX_MSG_BYTES, TRUNCATED_SUFFIX};
use logship::normalize::Normalizer;
use logship::pipeline::line::{LinePath, Stream};
use logship::redact::{RedactionConfig, Redactor, StreamState};
use logship::source::tailer::Line;

const FORMATS: [Format; 9] = [
    Format::Auto,
    Format::Json,
    Format::Logfmt,
    Format::Text,
    Format::Cri,
    Format::Docker,
    Format::Syslog,
    Format::Combined,
    Format::Klog,
];

/// Built once: a redactor costs milliseconds to compile, an input
/// microseconds to run.
fn redactor() -> &'static Redactor {
    static R: std::sync::OnceLock<Redactor> = std::sync::OnceLock::new();
    R.get_or_init(|| Redactor::new(&RedactionConfig::default()).expect("default redaction"))
}

fuzz_target!(|data: &[u8]| {
    let Some((&selector, rest)) = data.split_first() else {
        return;
    };
    let format = FORMATS[selector as usize % FORMATS.len()];
    let normalizer = Normalizer::plain("fuzz", Tier::System, format, "fuzz-host");
    let path = LinePath {
        normalizer: &normalizer,
        redactor: redactor(),
    };
    let mut state = StreamState::default();
    let mut seq = 0;
    let mut out = Vec::new();
    for bytes in rest.split(|&b| b == b'\n') {
        let mut ev = Event::empty(Tier::System);
        let line = Line {
            bytes,
            truncated: selector & 0x80 != 0,
            at: 0,
        };
        let stream = Stream {
            path_ids: &[],
            redact: &mut state,
        };
        path.event(line, stream, 1, &mut seq, &mut ev);
        assert!(ev.msg.len() <= MAX_MSG_BYTES + TRUNCATED_SUFFIX.len());
        out.clear();
        ev.write_json(&mut out);
        let body = out.strip_suffix(b"\n").expect("an event ends its line");
        assert!(!body.contains(&b'\n'), "an event is one line");
        let v: serde_json::Value = serde_json::from_slice(body).expect("valid JSON");
        assert!(v.is_object());
    }
});
