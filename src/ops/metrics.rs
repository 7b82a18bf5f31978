//! The agent's metrics (SPEC §7 and §14), one process-wide registry.
//!
//! A single global keeps every stage free to count without threading a handle
//! through each constructor; labels are low-cardinality by construction
//! (tiers, reasons, rule and source names from the config — never ids, paths
//! or messages). Hot paths count locally and add per batch.
//!
//! Every family is registered here, at start, whatever is configured: a
//! scrape always shows each family's `# TYPE` line, also for a feature that
//! is off or a labelled family with no series yet (SPEC §14). Each metric has
//! one writer; the field's comment names it where it is not obvious.

use std::sync::OnceLock;

use prometheus_client::encoding::{EncodeLabelSet, EncodeMetric, MetricEncoder};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::metrics::MetricType;
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct TierLabel {
    pub tier: String,
}
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ReasonLabel {
    pub reason: String,
}
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct SourceLabel {
    pub source: String,
}
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RuleLabel {
    pub rule: String,
}
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct AlertLabel {
    pub severity: String,
    pub channel: String,
}
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ChannelLabel {
    pub channel: String,
}
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ResultLabel {
    pub result: String,
}
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct VersionLabel {
    pub version: String,
}
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ApiLabel {
    pub endpoint: String,
    pub code: String,
}

/// A labelled family registered so that it is encoded — `# HELP` and
/// `# TYPE` — also before its first series: prometheus-client skips empty
/// families, and SPEC §14 wants every family on the first scrape.
#[derive(Debug)]
struct Listed<M>(M);

impl<M: EncodeMetric> EncodeMetric for Listed<M> {
    fn encode(&self, encoder: MetricEncoder) -> Result<(), std::fmt::Error> {
        self.0.encode(encoder)
    }

    fn metric_type(&self) -> MetricType {
        self.0.metric_type()
    }

    fn is_empty(&self) -> bool {
        false
    }
}

/// Every metric the agent exposes.
pub struct Metrics {
    pub registry: Registry,
    pub events_written: Family<TierLabel, Counter>,
    pub events_dropped: Family<ReasonLabel, Counter>,
    pub bytes_read: Family<SourceLabel, Counter>,
    pub redactions: Family<RuleLabel, Counter>,
    pub segment_rotations: Family<TierLabel, Counter>,
    pub uploads: Counter,
    pub upload_failures: Counter,
    pub upload_duration: Histogram,
    /// Owned by the uploader alone: jobs submitted and not yet done.
    pub upload_backlog_segments: Gauge,
    /// Owned by the uploader alone: bytes of those jobs as stored in the
    /// bucket (compressed).
    pub upload_backlog_bytes: Gauge,
    pub alerts_triggered: Family<AlertLabel, Counter>,
    pub alerts_suppressed: Family<RuleLabel, Counter>,
    pub alert_delivery_failures: Family<ChannelLabel, Counter>,
    pub alert_queue_depth: Gauge,
    pub files_watched: Gauge,
    pub config_reloads: Family<ResultLabel, Counter>,
    pub build_info: Family<VersionLabel, Gauge>,
    /// Lines whose bytes were not valid UTF-8 (replaced, not dropped).
    pub invalid_utf8_lines: Counter,
    /// Lines longer than the limit (cut and marked `[TRUNCATED]`).
    pub truncated_lines: Counter,
    /// Owned by `pipeline::records`: records and joined lines cut at a
    /// limit or closed early, by reason.
    pub records_cut: Family<ReasonLabel, Counter>,
    /// Owned by `pipeline::records`: lines and partial pieces dropped after
    /// their record or line was cut.
    pub record_lines_dropped: Counter,
    /// Ids replaced by a safe form before touching a path or key.
    pub invalid_ids: Counter,
    /// 1 while reading is paused because `segments.max_disk` is reached.
    pub backpressure: Gauge,
    /// Live-tail clients connected (SPEC §14).
    pub tail_clients: Gauge,
    /// Live-tail clients disconnected for falling behind (SPEC §10, §14).
    pub tail_dropped: Counter,
    /// API requests by endpoint and status code (SPEC §14).
    pub api_requests: Family<ApiLabel, Counter>,
    /// Events received from event-stream sources (SPEC §11, §14).
    pub stream_events: Family<SourceLabel, Counter>,
    /// Reconnects of event-stream sources (SPEC §11, §14).
    pub stream_reconnects: Family<SourceLabel, Counter>,
    /// Owned by `ops::disk`: 1 while reading is paused because data_dir
    /// takes no writes, by reason (`no_space`, `read_only`).
    pub data_dir_blocked: Family<ReasonLabel, Gauge>,
    /// Owned by `ops::disk`: times reading paused for that, by reason.
    pub data_dir_pauses: Family<ReasonLabel, Counter>,
    /// Owned by `source::watch`: directories that fell back to polling.
    pub watch_fallbacks: Counter,
    /// Owned by `source::watch`: directories polled now (not watched).
    pub polled_dirs: Gauge,
    /// Owned by `source::tailer`: handles of followed files open now.
    pub open_files: Gauge,
    /// Owned by `source::tailer`: handles closed, by reason (`idle`,
    /// `limit`).
    pub files_closed: Family<ReasonLabel, Counter>,
    /// Owned by `source::tailer`: closed handles opened again.
    pub files_reopened: Counter,
    /// Owned by `source::tailer`: files gone while their handle was closed
    /// (lines written after the close may not have been read).
    pub closed_files_vanished: Counter,
    /// Owned by `source::tailer`: opens that failed for lack of descriptors
    /// (EMFILE/ENFILE); retried, never skipped.
    pub fd_exhausted: Counter,
}

impl Metrics {
    fn new() -> Metrics {
        let mut registry = Registry::with_prefix("logship");
        let m = Metrics {
            events_written: Family::default(),
            events_dropped: Family::default(),
            bytes_read: Family::default(),
            redactions: Family::default(),
            segment_rotations: Family::default(),
            uploads: Counter::default(),
            upload_failures: Counter::default(),
            upload_duration: Histogram::new([
                0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
            ]),
            upload_backlog_segments: Gauge::default(),
            upload_backlog_bytes: Gauge::default(),
            alerts_triggered: Family::default(),
            alerts_suppressed: Family::default(),
            alert_delivery_failures: Family::default(),
            alert_queue_depth: Gauge::default(),
            files_watched: Gauge::default(),
            config_reloads: Family::default(),
            build_info: Family::default(),
            invalid_utf8_lines: Counter::default(),
            truncated_lines: Counter::default(),
            records_cut: Family::default(),
            record_lines_dropped: Counter::default(),
            invalid_ids: Counter::default(),
            backpressure: Gauge::default(),
            tail_clients: Gauge::default(),
            tail_dropped: Counter::default(),
            api_requests: Family::default(),
            stream_events: Family::default(),
            stream_reconnects: Family::default(),
            data_dir_blocked: Family::default(),
            data_dir_pauses: Family::default(),
            watch_fallbacks: Counter::default(),
            polled_dirs: Gauge::default(),
            open_files: Gauge::default(),
            files_closed: Family::default(),
            files_reopened: Counter::default(),
            closed_files_vanished: Counter::default(),
            fd_exhausted: Counter::default(),
            registry: Registry::default(),
        };
        let r = &mut registry;
        r.register(
            "events_written",
            "Events written to local segments",
            Listed(m.events_written.clone()),
        );
        r.register(
            "events_dropped",
            "Events not written or not evaluated, by reason",
            Listed(m.events_dropped.clone()),
        );
        r.register(
            "bytes_read",
            "Bytes read from tailed files",
            Listed(m.bytes_read.clone()),
        );
        r.register(
            "redactions",
            "Secrets redacted, by rule",
            Listed(m.redactions.clone()),
        );
        r.register(
            "segment_rotations",
            "Segments sealed",
            Listed(m.segment_rotations.clone()),
        );
        r.register("uploads", "Segments uploaded", m.uploads.clone());
        r.register(
            "upload_failures",
            "Failed upload attempts",
            m.upload_failures.clone(),
        );
        r.register(
            "upload_duration_seconds",
            "Upload duration",
            m.upload_duration.clone(),
        );
        r.register(
            "upload_backlog_segments",
            "Sealed segments waiting for upload",
            m.upload_backlog_segments.clone(),
        );
        r.register(
            "upload_backlog_bytes",
            "Bytes of sealed segments waiting for upload",
            m.upload_backlog_bytes.clone(),
        );
        r.register(
            "alerts_triggered",
            "Notifications sent",
            Listed(m.alerts_triggered.clone()),
        );
        r.register(
            "alerts_suppressed",
            "Notifications suppressed as duplicates",
            Listed(m.alerts_suppressed.clone()),
        );
        r.register(
            "alert_delivery_failures",
            "Notifications that could not be delivered",
            Listed(m.alert_delivery_failures.clone()),
        );
        r.register(
            "alert_queue_depth",
            "Events waiting for alert evaluation",
            m.alert_queue_depth.clone(),
        );
        r.register(
            "files_watched",
            "Files currently tailed",
            m.files_watched.clone(),
        );
        r.register(
            "config_reloads",
            "Config reloads by result",
            Listed(m.config_reloads.clone()),
        );
        r.register(
            "build_info",
            "Build information",
            Listed(m.build_info.clone()),
        );
        r.register(
            "invalid_utf8_lines",
            "Lines with invalid UTF-8, replaced",
            m.invalid_utf8_lines.clone(),
        );
        r.register(
            "truncated_lines",
            "Lines cut at the size limit",
            m.truncated_lines.clone(),
        );
        r.register(
            "records_cut",
            "Multi-line records and joined container lines cut at a limit or closed early, by reason",
            Listed(m.records_cut.clone()),
        );
        r.register(
            "record_lines_dropped",
            "Lines and partial pieces dropped after their record or line was cut",
            m.record_lines_dropped.clone(),
        );
        r.register(
            "invalid_ids",
            "Ids replaced by a safe form",
            m.invalid_ids.clone(),
        );
        r.register(
            "backpressure",
            "1 while reading is paused at segments.max_disk",
            m.backpressure.clone(),
        );
        r.register(
            "tail_clients",
            "Live-tail clients connected",
            m.tail_clients.clone(),
        );
        r.register(
            "tail_dropped",
            "Live-tail clients disconnected after 3 consecutive full buffers",
            m.tail_dropped.clone(),
        );
        r.register(
            "api_requests",
            "API requests by endpoint and status code",
            Listed(m.api_requests.clone()),
        );
        r.register(
            "stream_events",
            "Events received from event-stream sources",
            Listed(m.stream_events.clone()),
        );
        r.register(
            "stream_reconnects",
            "Reconnects of event-stream sources",
            Listed(m.stream_reconnects.clone()),
        );
        r.register(
            "data_dir_blocked",
            "1 while reading is paused because data_dir takes no writes, by reason",
            Listed(m.data_dir_blocked.clone()),
        );
        r.register(
            "data_dir_pauses",
            "Times reading paused because data_dir took no writes, by reason",
            Listed(m.data_dir_pauses.clone()),
        );
        r.register(
            "watch_fallbacks",
            "Directories that could not be watched (inotify limit) and fell back to polling",
            m.watch_fallbacks.clone(),
        );
        r.register(
            "polled_dirs",
            "Directories polled because they could not be watched",
            m.polled_dirs.clone(),
        );
        r.register(
            "open_files",
            "Handles of followed files open now (bounded by the open-files limit)",
            m.open_files.clone(),
        );
        r.register(
            "files_closed",
            "Handles of followed files closed, by reason (idle, limit); reopened by identity when they change",
            Listed(m.files_closed.clone()),
        );
        r.register(
            "files_reopened",
            "Closed handles of followed files opened again",
            m.files_reopened.clone(),
        );
        r.register(
            "closed_files_vanished",
            "Followed files deleted or moved out of reach while their handle was closed",
            m.closed_files_vanished.clone(),
        );
        r.register(
            "fd_exhausted",
            "Opens of followed files that failed for lack of file descriptors (retried)",
            m.fd_exhausted.clone(),
        );
        // Known label sets exist from the start, so a scrape (and an alert
        // on rate()) sees zeros rather than missing series.
        for tier in ["system", "build", "deploy", "action", "lifecycle"] {
            let t = TierLabel {
                tier: tier.to_string(),
            };
            let _ = m.events_written.get_or_create(&t);
            let _ = m.segment_rotations.get_or_create(&t);
        }
        for result in ["ok", "error"] {
            let _ = m.config_reloads.get_or_create(&ResultLabel {
                result: result.to_string(),
            });
        }
        for p in super::disk::DiskProblem::ALL {
            let r = ReasonLabel {
                reason: p.reason().to_string(),
            };
            let _ = m.data_dir_blocked.get_or_create(&r);
            let _ = m.data_dir_pauses.get_or_create(&r);
        }
        for reason in crate::source::tailer::CloseReason::ALL {
            let _ = m.files_closed(reason);
        }
        m.dropped("alert_queue_full");
        m.build_info
            .get_or_create(&VersionLabel {
                version: env!("CARGO_PKG_VERSION").to_string(),
            })
            .set(1);
        Metrics { registry, ..m }
    }

    /// The text exposition (`GET /metrics`).
    pub fn encode(&self) -> String {
        let mut out = String::new();
        // Encoding into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }

    pub fn dropped(&self, reason: &str) -> Counter {
        self.events_dropped
            .get_or_create(&ReasonLabel {
                reason: reason.to_string(),
            })
            .clone()
    }

    pub fn files_closed(&self, reason: crate::source::tailer::CloseReason) -> Counter {
        self.files_closed
            .get_or_create(&ReasonLabel {
                reason: reason.label().to_string(),
            })
            .clone()
    }

    pub fn records_cut(&self, reason: &str) -> Counter {
        self.records_cut
            .get_or_create(&ReasonLabel {
                reason: reason.to_string(),
            })
            .clone()
    }

    pub fn redaction(&self, rule: &str) -> Counter {
        self.redactions
            .get_or_create(&RuleLabel {
                rule: rule.to_string(),
            })
            .clone()
    }
}

/// The process-wide metrics.
pub fn metrics() -> &'static Metrics {
    static M: OnceLock<Metrics> = OnceLock::new();
    M.get_or_init(Metrics::new)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exposes_spec_names() {
        let m = metrics();
        m.events_written
            .get_or_create(&TierLabel {
                tier: "system".into(),
            })
            .inc();
        m.dropped("test").inc();
        let text = m.encode();
        for name in [
            "logship_events_written_total{tier=\"system\"}",
            "logship_events_dropped_total{reason=\"test\"}",
            "logship_uploads_total",
            "logship_upload_failures_total",
            "logship_upload_duration_seconds_bucket",
            "logship_upload_backlog_segments",
            "logship_upload_backlog_bytes",
            "logship_alert_queue_depth",
            "logship_files_watched",
            "logship_build_info{version=",
        ] {
            assert!(text.contains(name), "{name} missing from\n{text}");
        }
    }
}
