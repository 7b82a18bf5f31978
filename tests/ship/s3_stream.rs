//! The upload path as the agent uses it: a segment sealed by
//! `segment::seal` (multi-member gzip, digests computed while compressing)
//! and streamed from its file by `Bucket::put_file`, checked on the wire
//! through the recording proxy and in the bucket.

use std::io::Read;

use logship::segment::seal;
use logship::ship::digest::ObjectFile;
use logship::ship::s3::S3Bucket;
use logship::ship::{Bucket, ObjectMeta, Retry};

use crate::support::garage::Garage;
use crate::support::s3_proxy::{Faults, Proxy};

/// A sealed segment of `n` NDJSON lines: (segment bytes, sealed object).
fn sealed(dir: &std::path::Path, n: usize) -> (Vec<u8>, ObjectFile) {
    let body: Vec<u8> = (0..n)
        .flat_map(|i| {
            format!(
                "{{\"seq\":{i},\"msg\":\"request {} served in {} ms\"}}\n",
                i * 7,
                i % 97
            )
            .into_bytes()
        })
        .collect();
    let src = dir.join("s.ndjson");
    std::fs::write(&src, &body).unwrap();
    let gz = dir.join("s.ndjson.gz");
    let (len, digest) = seal::compress(&src, body.len() as u64, &gz, 6).unwrap();
    (
        body,
        ObjectFile {
            path: gz,
            len,
            digest,
        },
    )
}

fn meta() -> ObjectMeta {
    ObjectMeta {
        first_ts: 1,
        last_ts: 2,
        lines: 3,
        tier: "system".into(),
        instance_id: "h".into(),
    }
}

/// Over plain HTTP: Content-MD5 of the exact bytes, the payload's SHA-256
/// in the signature, a plain Content-Length body; the stored object is the
/// file, and gunzips (all members) to the segment.
#[tokio::test]
async fn a_streamed_put_carries_precomputed_digests_and_stores_the_file() {
    let Some(g) = Garage::start_or_skip() else {
        return;
    };
    let d = tempfile::tempdir().unwrap();
    // About 3 MiB of NDJSON: several gzip members.
    let (body, obj) = sealed(d.path(), 70_000);
    let proxy = Proxy::start(g.s3_addr, Faults::default()).await;
    let b = S3Bucket::new(&g.settings_via(&proxy.endpoint));
    let key = "system/2026/01/02/h-stream.ndjson.gz";
    b.put_file(key, &obj, &meta()).await.unwrap();

    let rec = proxy.recorded();
    let put = rec.iter().find(|r| r.method == "PUT").expect("a PUT");
    assert_eq!(
        put.header("content-md5"),
        Some(obj.digest.content_md5().as_str())
    );
    assert_eq!(
        put.body_md5.as_deref(),
        Some(obj.digest.content_md5().as_str())
    );
    assert_eq!(put.body_len as u64, obj.len);
    assert_eq!(
        put.header("content-length"),
        Some(obj.len.to_string().as_str())
    );
    assert_eq!(
        put.header("x-amz-content-sha256"),
        Some(obj.digest.sha256_hex().as_str())
    );
    for (name, value) in &put.headers {
        assert!(
            !name.starts_with("x-amz-checksum-")
                && name != "x-amz-trailer"
                && name != "transfer-encoding"
                && !(name == "content-encoding" && value.contains("aws-chunked")),
            "PUT sent {name}: {value}"
        );
    }

    let stored = g.get(key).expect("stored");
    assert_eq!(stored.bytes, std::fs::read(&obj.path).unwrap());
    let mut raw = Vec::new();
    flate2::read::MultiGzDecoder::new(&stored.bytes[..])
        .read_to_end(&mut raw)
        .unwrap();
    assert_eq!(raw, body);
}

/// A sealed file whose bytes changed on disk after its digests were taken
/// is refused by the bucket (BadDigest, retried slowly), never stored.
#[tokio::test]
async fn a_file_changed_after_sealing_is_refused_not_stored() {
    let Some(g) = Garage::start_or_skip() else {
        return;
    };
    let d = tempfile::tempdir().unwrap();
    let (_, obj) = sealed(d.path(), 1000);
    let mut bytes = std::fs::read(&obj.path).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0xff;
    std::fs::write(&obj.path, &bytes).unwrap();
    let b = S3Bucket::new(&g.settings());
    let e = b
        .put_file("system/changed.ndjson.gz", &obj, &meta())
        .await
        .unwrap_err();
    assert_eq!(e.retry, Retry::Slowly, "{e}");
    assert!(g.list().is_empty());
}
