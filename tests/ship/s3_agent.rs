//! The whole agent against a real S3 server (Garage on loopback): a writer
//! appends continuously, the agent is `kill -9`'d during uploads and the
//! server is down for a stretch; at the end every event is in the bucket
//! exactly once and every object's bytes match its Content-MD5 (ETag).

use crate::support;

use std::io::Read;
use std::time::Duration;

use support::agent::{assert_exactly_once, parse_lines, Agent, Writer};
use support::garage::Garage;

#[test]
fn kill_9_and_server_outage_while_shipping_to_s3() {
    let Some(mut g) = Garage::start_or_skip() else {
        return;
    };
    let mut a = Agent::new(&format!(
        r#"
[agent]
instance_id = "s3-host"
data_dir = "{{data}}"
shutdown_timeout = "20s"
[segments]
commit_interval = "50ms"
max_bytes = "32KiB"
[[sources]]
name = "app"
include = ["{{logs}}/*.log"]
[bucket]
kind = "s3"
endpoint = "{endpoint}"
region = "{region}"
bucket = "{bucket}"
access_key_id = "{ak}"
secret_access_key = "{sk}"
prefix = "/fleet/"
retry_initial = "50ms"
retry_max = "500ms"
[metrics]
enabled = false
"#,
        endpoint = g.endpoint,
        region = g.region,
        bucket = g.bucket,
        ak = g.access_key,
        sk = g.secret_key,
    ));
    let log = a.logs().join("app.log");
    let writer = Writer::spawn(log.clone(), "s3", 40, Duration::from_millis(10));
    a.start();
    for round in 0..6 {
        std::thread::sleep(Duration::from_millis(700));
        if round == 2 {
            // The server goes away for a while; segments wait on disk.
            g.kill();
            std::thread::sleep(Duration::from_secs(2));
        }
        a.kill9();
        if round == 3 {
            g.restart();
        }
        a.start();
    }
    let all = writer.stop();
    a.wait_local(all.len());
    assert!(a.term().success(), "stderr:\n{}", a.stderr());
    // Keys follow SPEC §3 with the prefix's slashes normalized.
    let keys: Vec<String> = g.list().keys().cloned().collect();
    assert!(!keys.is_empty());
    for k in &keys {
        assert!(
            k.starts_with("fleet/system/") && k.ends_with(".ndjson.gz") && k.contains("/s3-host-"),
            "{k}"
        );
    }
    assert_exactly_once(&g.events(), &all);
    // Each object is stored as sent: its ETag (MD5 for a single PUT) matches
    // the bytes, and the metadata describes them.
    for k in &keys {
        let obj = g.get(k).unwrap();
        let md5 = format!("{:x}", md5_of(&obj.bytes));
        assert_eq!(
            obj.e_tag.as_deref().map(|e| e.trim_matches('"')),
            Some(md5.as_str()),
            "{k}"
        );
        let lines = obj
            .metadata
            .get("lines")
            .and_then(|v| v.parse::<usize>().ok());
        let mut raw = Vec::new();
        flate2::read::MultiGzDecoder::new(&obj.bytes[..])
            .read_to_end(&mut raw)
            .unwrap();
        assert_eq!(lines, Some(parse_lines(&raw).len()), "{k}");
        assert_eq!(obj.metadata.get("tier").map(String::as_str), Some("system"));
        assert_eq!(
            obj.metadata.get("instance-id").map(String::as_str),
            Some("s3-host")
        );
    }
}

fn md5_of(bytes: &[u8]) -> impl std::fmt::LowerHex {
    use md5::Digest;
    md5::Md5::digest(bytes)
}
