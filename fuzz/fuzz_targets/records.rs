//! Fuzz the record assembler (container partial lines + multiline
//! grouping) as the agent drives it: lines of a file in order, with their
//! offsets, timeouts now and then, a flush at the end. Any bytes give events
//! whose `msg` stays within 256 KiB, each one valid JSON on one line; no
//! more events than lines; and the resume offset never points past what
//! was pushed.
#![no_main]

use std::time::{Duration, Instant};

use libfuzzer_sys::fuzz_target;
use logship::config::{Format, MultilineConfig, MultilineMode};
use logship::event::{Event, Tier, MAX_MSG_BYTES, TRUNCATED_SUFFIX};
use logship::normalize::Normalizer;
use logship::pipeline::line::LinePath;
use logship::pipeline::multiline::Rules;
use logship::pipeline::records::{Assembler, Ctx, RecordSpec};
use logship::redact::{RedactionConfig, Redactor, StreamState};
use logship::source::tailer::Line;

const MODES: [Option<MultilineMode>; 9] = [
    None,
    Some(MultilineMode::Auto),
    Some(MultilineMode::Java),
    Some(MultilineMode::Python),
    Some(MultilineMode::Go),
    Some(MultilineMode::Node),
    Some(MultilineMode::Ruby),
    Some(MultilineMode::Php),
    Some(MultilineMode::Dotnet),
];
const FORMATS: [Format; 3] = [Format::Auto, Format::Cri, Format::Docker];

fn redactor() -> &'static Redactor {
    static R: std::sync::OnceLock<Redactor> = std::sync::OnceLock::new();
    R.get_or_init(|| Redactor::new(&RedactionConfig::default()).expect("default redaction"))
}

fn check(ev: &Event, out: &mut Vec<u8>) {
    assert!(ev.msg.len() <= MAX_MSG_BYTES + TRUNCATED_SUFFIX.len());
    out.clear();
    ev.write_json(out);
    let body = out.strip_suffix(b"\n").expect("an event ends its line");
    assert!(!body.contains(&b'\n'), "an event is one line");
    let v: serde_json::Value = serde_json::from_slice(body).expect("valid JSON");
    assert!(v.is_object());
}

fuzz_target!(|data: &[u8]| {
    let Some((&sel, rest)) = data.split_first() else {
        return;
    };
    let format = FORMATS[sel as usize % FORMATS.len()];
    let container = true;
    let spec = match MODES[(sel as usize / 3) % MODES.len()] {
        None => RecordSpec::lines(container),
        Some(mode) => {
            let ml = MultilineConfig::with_mode(mode);
            RecordSpec::grouped(Rules::new(&ml).expect("a preset compiles"), &ml, container)
        }
    };
    let normalizer = Normalizer::plain("fuzz", Tier::System, format, "fuzz-host");
    let path = LinePath {
        normalizer: &normalizer,
        redactor: redactor(),
    };
    let mut redact = StreamState::default();
    let mut seq = 0u64;
    let mut asm = Assembler::default();
    let mut out = Vec::new();
    let (mut events, mut lines) = (0usize, 0usize);
    let mut at = 0u64;
    let start = Instant::now();
    for (i, bytes) in rest.split(|&b| b == b'\n').enumerate() {
        lines += 1;
        let line = Line {
            bytes,
            truncated: false,
            at,
        };
        // Every 16th line comes "later", past any record's timeout.
        let now = start + Duration::from_secs(10 * (i as u64 / 16));
        let mut cx = Ctx {
            path,
            spec: &spec,
            path_ids: &[],
            redact: &mut redact,
            now,
            wall_ms: 1,
            next_seq: &mut seq,
        };
        asm.push(line, at, &mut cx, &mut |ev| {
            events += 1;
            check(ev, &mut out);
        });
        if i % 16 == 15 {
            asm.tick(&mut cx, &mut |ev| {
                events += 1;
                check(ev, &mut out);
            });
        }
        at += bytes.len() as u64 + 1;
        if let Some((resume, _)) = asm.resume() {
            assert!(resume < at, "resume {resume} past the end {at}");
        }
    }
    let mut cx = Ctx {
        path,
        spec: &spec,
        path_ids: &[],
        redact: &mut redact,
        now: start + Duration::from_secs(3600),
        wall_ms: 1,
        next_seq: &mut seq,
    };
    asm.flush(&mut cx, &mut |ev| {
        events += 1;
        check(ev, &mut out);
    });
    assert!(asm.is_idle(), "open after a flush");
    assert!(events <= lines, "{events} events from {lines} lines");
});
