//! Every metric family of SPEC §7 and §14 is on `/metrics` from the first
//! scrape, with its type, in the barest configuration: no `[alerts]`, no
//! `[bucket]` section, no `[api]`. The exposition is parsed, not grepped.

use crate::support;
use support::agent::Agent;

/// (family as in `# TYPE`, type): §7 and §14; counters without `_total`.
const SPEC_FAMILIES: &[(&str, &str)] = &[
    ("logship_events_written", "counter"),
    ("logship_events_dropped", "counter"),
    ("logship_bytes_read", "counter"),
    ("logship_redactions", "counter"),
    ("logship_segment_rotations", "counter"),
    ("logship_uploads", "counter"),
    ("logship_upload_failures", "counter"),
    ("logship_upload_duration_seconds", "histogram"),
    ("logship_upload_backlog_segments", "gauge"),
    ("logship_upload_backlog_bytes", "gauge"),
    ("logship_alerts_triggered", "counter"),
    ("logship_alerts_suppressed", "counter"),
    ("logship_alert_queue_depth", "gauge"),
    ("logship_files_watched", "gauge"),
    ("logship_config_reloads", "counter"),
    ("logship_build_info", "gauge"),
    ("logship_tail_clients", "gauge"),
    ("logship_tail_dropped", "counter"),
    ("logship_api_requests", "counter"),
    ("logship_stream_events", "counter"),
    ("logship_stream_reconnects", "counter"),
];

/// Not in the SPEC: the bounded descriptors of the tailer (issue #16),
/// which an alert on `logship_fd_exhausted_total` needs from the start.
const OPEN_FILE_FAMILIES: &[(&str, &str)] = &[
    ("logship_open_files", "gauge"),
    ("logship_files_closed", "counter"),
    ("logship_files_reopened", "counter"),
    ("logship_closed_files_vanished", "counter"),
    ("logship_fd_exhausted", "counter"),
];

#[test]
fn every_spec_family_is_exposed_from_the_first_scrape() {
    let mut a = Agent::simple("");
    let cfg = std::fs::read_to_string(&a.config).unwrap();
    for section in ["[alerts", "[bucket", "[api"] {
        assert!(!cfg.contains(section), "{section} in\n{cfg}");
    }
    a.enable_metrics();
    a.start();
    let (status, body) = a.http_get("/metrics");
    assert_eq!(status, 200);
    let exp = support::prom::parse(&body).unwrap_or_else(|e| panic!("{e}\n{body}"));
    let missing: Vec<String> = SPEC_FAMILIES
        .iter()
        .chain(OPEN_FILE_FAMILIES)
        .filter(|(name, kind)| exp.families.get(*name).map(|f| f.kind.as_str()) != Some(*kind))
        .map(|(name, kind)| {
            let got = exp.families.get(*name).map(|f| f.kind.clone());
            format!("{name}: want {kind}, got {got:?}")
        })
        .collect();
    assert!(missing.is_empty(), "{missing:?}\n{body}");
    // Unlabelled counters and gauges have their one sample at once.
    for (sample, value) in [
        ("logship_uploads_total", 0.0),
        ("logship_tail_dropped_total", 0.0),
        ("logship_tail_clients", 0.0),
        ("logship_upload_backlog_segments", 0.0),
        ("logship_upload_backlog_bytes", 0.0),
        ("logship_fd_exhausted_total", 0.0),
        ("logship_closed_files_vanished_total", 0.0),
    ] {
        assert_eq!(exp.value(sample, &[]), Some(value), "{sample}\n{body}");
    }
    for reason in ["idle", "limit"] {
        let labels = [("reason", reason)];
        assert_eq!(
            exp.value("logship_files_closed_total", &labels),
            Some(0.0),
            "{body}"
        );
    }
    let version = [("version", env!("CARGO_PKG_VERSION"))];
    assert_eq!(exp.value("logship_build_info", &version), Some(1.0));
    let st = a.term();
    assert!(st.success(), "{st:?}; stderr:\n{}", a.stderr());
}

#[test]
fn the_parser_rejects_what_prometheus_would() {
    use support::prom::parse;
    let ok = "# HELP x A.\n# TYPE x counter\nx_total{a=\"1\",b=\"q\\\"\"} 3\n# EOF\n";
    let exp = parse(ok).unwrap();
    assert_eq!(exp.value("x_total", &[("a", "1"), ("b", "q\"")]), Some(3.0));
    for bad in [
        "x_total 1\n",                           // no TYPE
        "# TYPE x counter\ny_total 1\n",         // outside its family
        "# TYPE x counter\nx_total{a=1} 1\n",    // unquoted value
        "# TYPE x counter\nx_total{a=\"1\" 1\n", // unterminated labels
        "# TYPE x counter\nx_total one\n",       // not a number
        "# TYPE x nonsense\n",                   // unknown type
        "# TYPE x counter\n# TYPE x gauge\n",    // second TYPE
    ] {
        assert!(parse(bad).is_err(), "accepted {bad:?}");
    }
}
