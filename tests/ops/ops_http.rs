//! The metrics/health endpoint over a real socket: routes, status codes,
//! content types, readiness transitions, and stopping at shutdown.

use std::time::{Duration, Instant};

use logship::ops::http;
use logship::ops::metrics::{
    metrics, AlertLabel, ChannelLabel, ReasonLabel, ResultLabel, RuleLabel, SourceLabel, TierLabel,
};
use logship::ops::shutdown;
use logship::ops::Readiness;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

struct Reply {
    status: u16,
    head: String,
    body: String,
}

/// One HTTP/1.1 request on a fresh connection, read until the server closes.
async fn request(addr: std::net::SocketAddr, method: &str, path: &str) -> Reply {
    let mut s = TcpStream::connect(addr).await.expect("connect");
    let req = format!("{method} {path} HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n");
    s.write_all(req.as_bytes()).await.unwrap();
    let mut buf = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), s.read_to_end(&mut buf))
        .await
        .expect("response in time")
        .unwrap();
    let text = String::from_utf8(buf).unwrap();
    let (head, body) = text.split_once("\r\n\r\n").expect("complete response");
    let status = head[9..12].parse().unwrap();
    Reply {
        status,
        head: head.to_ascii_lowercase(),
        body: body.to_string(),
    }
}

async fn start(
    ready: Readiness,
) -> (
    std::net::SocketAddr,
    shutdown::Trigger,
    tokio::task::JoinHandle<anyhow::Result<()>>,
) {
    let (trigger, sd) = shutdown::channel();
    let ep = http::bind("127.0.0.1:0".parse().unwrap()).await.unwrap();
    let addr = ep.local_addr();
    assert_ne!(addr.port(), 0);
    let task = tokio::spawn(ep.serve(ready, sd));
    (addr, trigger, task)
}

#[tokio::test]
async fn metrics_healthz_and_404() {
    let (addr, trigger, task) = start(Readiness::default()).await;
    metrics().uploads.inc();

    let m = request(addr, "GET", "/metrics").await;
    assert_eq!(m.status, 200);
    assert!(
        m.head
            .contains("content-type: application/openmetrics-text; version=1.0.0; charset=utf-8"),
        "{}",
        m.head
    );
    for name in [
        "logship_uploads_total",
        "logship_build_info{version=",
        "logship_files_watched",
    ] {
        assert!(m.body.contains(name), "{name} missing:\n{}", m.body);
    }
    assert!(
        m.body.trim_end().ends_with("# EOF"),
        "OpenMetrics ends with # EOF"
    );

    let h = request(addr, "GET", "/healthz").await;
    assert_eq!((h.status, h.body.as_str()), (200, "ok\n"));

    let head = request(addr, "HEAD", "/healthz").await;
    assert_eq!((head.status, head.body.as_str()), (200, ""));

    let nf = request(addr, "GET", "/nope").await;
    assert_eq!(nf.status, 404);
    assert!(
        nf.body.contains("/metrics"),
        "404 says where to go: {}",
        nf.body
    );

    let post = request(addr, "POST", "/metrics").await;
    assert_eq!(post.status, 405);
    assert!(post.head.contains("allow: get, head"), "{}", post.head);

    trigger.fire();
    tokio::time::timeout(Duration::from_secs(5), task)
        .await
        .expect("server stops at shutdown")
        .unwrap()
        .unwrap();
    assert!(
        TcpStream::connect(addr).await.is_err(),
        "listener closed after shutdown"
    );
}

#[tokio::test]
async fn readyz_follows_the_pipeline() {
    let ready = Readiness::new(Duration::from_millis(200));
    let (addr, trigger, _task) = start(ready.clone()).await;

    let r = request(addr, "GET", "/readyz").await;
    assert_eq!(r.status, 503);
    assert_eq!(r.body, "not ready: config not loaded\n");
    assert!(r.head.contains("content-type: text/plain"), "{}", r.head);

    ready.set_config_loaded();
    let r = request(addr, "GET", "/readyz").await;
    assert_eq!(
        (r.status, r.body.as_str()),
        (503, "not ready: sources not watched yet\n")
    );

    ready.set_sources_watched(true);
    assert_eq!(request(addr, "GET", "/readyz").await.status, 200);

    // Failing, but not yet for longer than the limit: still ready.
    ready.set_upload_failing_since(Some(Instant::now()));
    assert_eq!(request(addr, "GET", "/readyz").await.status, 200);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let r = request(addr, "GET", "/readyz").await;
    assert_eq!(r.status, 503);
    assert!(
        r.body.starts_with("not ready: uploads failing"),
        "{}",
        r.body
    );

    ready.upload_succeeded();
    assert_eq!(request(addr, "GET", "/readyz").await.status, 200);

    ready.set_stopping();
    let r = request(addr, "GET", "/readyz").await;
    assert_eq!(
        (r.status, r.body.as_str()),
        (503, "not ready: shutting down\n")
    );
    // Liveness is unaffected by readiness.
    assert_eq!(request(addr, "GET", "/healthz").await.status, 200);
    trigger.fire();
}

#[tokio::test]
async fn busy_port_is_an_actionable_error() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let err = http::bind(taken.local_addr().unwrap()).await.unwrap_err();
    let msg = format!("{err:#}");
    assert!(msg.contains("metrics.listen"), "{msg}");
    assert!(
        msg.contains(&taken.local_addr().unwrap().to_string()),
        "{msg}"
    );
}

#[tokio::test]
async fn slow_client_does_not_block_others() {
    let (addr, trigger, _task) = start(Readiness::default()).await;
    // A client that connects and never sends a request...
    let _idle = TcpStream::connect(addr).await.unwrap();
    // ...does not stop others from being served.
    assert_eq!(request(addr, "GET", "/healthz").await.status, 200);
    trigger.fire();
}

/// docs/operations.md lists every metric the endpoint exposes, and no other.
#[tokio::test]
async fn documented_metrics_match_the_exposed_ones() {
    // Labelled families appear once they have a child: give each one.
    let m = metrics();
    let s = || "doc-test".to_string();
    let _ = m.events_written.get_or_create(&TierLabel { tier: s() });
    let _ = m.segment_rotations.get_or_create(&TierLabel { tier: s() });
    let _ = m.events_dropped.get_or_create(&ReasonLabel { reason: s() });
    let _ = m.bytes_read.get_or_create(&SourceLabel { source: s() });
    let _ = m.redactions.get_or_create(&RuleLabel { rule: s() });
    let _ = m.alerts_suppressed.get_or_create(&RuleLabel { rule: s() });
    let _ = m.alerts_triggered.get_or_create(&AlertLabel {
        severity: s(),
        channel: s(),
    });
    let _ = m
        .alert_delivery_failures
        .get_or_create(&ChannelLabel { channel: s() });
    let _ = m.config_reloads.get_or_create(&ResultLabel { result: s() });

    let (addr, trigger, _task) = start(Readiness::default()).await;
    let body = request(addr, "GET", "/metrics").await.body;
    trigger.fire();
    // `# TYPE logship_uploads counter`: family names, without `_total`.
    let mut exposed: Vec<String> = body
        .lines()
        .filter_map(|l| l.strip_prefix("# TYPE "))
        .filter_map(|l| l.split_whitespace().next())
        .map(String::from)
        .collect();
    exposed.sort();
    let doc = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/operations.md"))
        .unwrap();
    let mut documented: Vec<String> = doc
        .lines()
        .filter_map(|l| l.strip_prefix("| `logship_"))
        .map(|l| {
            let name: String = l
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect();
            format!("logship_{}", name.trim_end_matches("_total"))
        })
        .collect();
    documented.sort();
    assert_eq!(
        documented, exposed,
        "docs/operations.md metrics table vs /metrics"
    );
}
