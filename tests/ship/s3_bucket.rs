//! The S3 bucket against a real S3 server (Garage) on loopback: what is
//! stored, which headers go on the wire, lifecycle rules, and rejections.

use crate::support;

use std::collections::BTreeMap;

use logship::ship::s3::{content_md5, LifecycleRule, S3Bucket, CONTENT_TYPE};
use logship::ship::{Bucket, ObjectMeta, Retry};
use support::garage::Garage;
use support::s3_proxy::{Faults, Proxy};

fn meta() -> ObjectMeta {
    ObjectMeta {
        first_ts: 1_736_812_345_678,
        last_ts: 1_736_812_349_999,
        lines: 3,
        tier: "system".into(),
        instance_id: "host-1".into(),
    }
}

/// Bytes that do not compress, like a gzip file.
fn noise(len: usize) -> Vec<u8> {
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

#[tokio::test]
async fn put_stores_bytes_type_and_metadata() {
    let Some(g) = Garage::start_or_skip() else {
        return;
    };
    let b = S3Bucket::new(&g.settings());
    let key = "system/2026/01/02/host-1-01J0000000000000000000000.ndjson.gz";
    let body = noise(100_000);
    b.put(key, body.clone(), &meta()).await.unwrap();

    let info = b.head(key).await.unwrap().expect("object exists");
    assert_eq!(info.size, body.len() as u64);
    assert_eq!(info.meta, meta().to_map());
    assert!(b.head("system/none.ndjson.gz").await.unwrap().is_none());

    let o = g.get(key).expect("object readable");
    assert_eq!(
        content_md5(&o.bytes),
        content_md5(&body),
        "bytes differ after download"
    );
    assert_eq!(o.content_type.as_deref(), Some(CONTENT_TYPE));
    assert_eq!(o.content_encoding, None);
    let m: BTreeMap<_, _> = o.metadata.into_iter().collect();
    assert_eq!(m, meta().to_map());
    assert_eq!(m["first-ts"], "1736812345678");
    assert_eq!(m["instance-id"], "host-1");
}

#[tokio::test]
async fn reupload_of_same_key_is_an_identical_overwrite() {
    let Some(g) = Garage::start_or_skip() else {
        return;
    };
    let b = S3Bucket::new(&g.settings());
    let key = "builds/b-42.ndjson.gz";
    let body = noise(5_000);
    b.put(key, body.clone(), &meta()).await.unwrap();
    b.put(key, body.clone(), &meta()).await.unwrap();
    let keys = g.list();
    assert_eq!(keys.len(), 1, "{keys:?}");
    assert_eq!(keys[key], body.len() as i64);
    assert_eq!(g.get(key).unwrap().bytes, body);
}

/// Every request logship sends, captured on the wire: `Content-MD5` on
/// bodies, and nothing R2 does not implement.
#[tokio::test]
async fn requests_carry_content_md5_and_no_checksum_headers() {
    let Some(g) = Garage::start_or_skip() else {
        return;
    };
    let proxy = Proxy::start(g.s3_addr, Faults::default()).await;
    let b = S3Bucket::new(&g.settings_via(&proxy.endpoint));
    let body = noise(3 * 1024 * 1024);
    b.put("system/2026/01/02/h-a.ndjson.gz", body.clone(), &meta())
        .await
        .unwrap();
    b.put("builds/small.ndjson.gz", b"{}\n".to_vec(), &meta())
        .await
        .unwrap();
    b.head("system/2026/01/02/h-a.ndjson.gz").await.unwrap();
    let rules = LifecycleRule::for_tiers("", &Default::default());
    b.apply_lifecycle(&rules).await.unwrap();

    let recorded = proxy.recorded();
    assert!(recorded.len() >= 5, "{recorded:#?}");
    for r in &recorded {
        for (name, value) in &r.headers {
            assert!(
                !name.starts_with("x-amz-checksum-")
                    && name != "x-amz-sdk-checksum-algorithm"
                    && name != "x-amz-trailer"
                    && name != "transfer-encoding"
                    && name != "x-amz-decoded-content-length",
                "{} {} sent {name}: {value}",
                r.method,
                r.target
            );
        }
        if let Some(ce) = r.header("content-encoding") {
            assert!(
                !ce.contains("aws-chunked"),
                "{} {}: {ce}",
                r.method,
                r.target
            );
        }
        if let Some(sha) = r.header("x-amz-content-sha256") {
            assert!(
                !sha.starts_with("STREAMING"),
                "{} {}: {sha}",
                r.method,
                r.target
            );
        }
    }
    let puts: Vec<_> = recorded.iter().filter(|r| r.method == "PUT").collect();
    assert_eq!(puts.len(), 3, "{puts:#?}");
    for p in puts {
        let md5 = p
            .header("content-md5")
            .unwrap_or_else(|| panic!("no Content-MD5 on {}", p.target));
        assert_eq!(Some(md5), p.body_md5.as_deref(), "{}", p.target);
    }
    let object_put = recorded
        .iter()
        .find(|r| r.target.contains("h-a.ndjson.gz") && r.method == "PUT")
        .unwrap();
    assert_eq!(
        object_put.header("content-md5"),
        Some(content_md5(&body).as_str())
    );
    assert_eq!(object_put.header("content-type"), Some(CONTENT_TYPE));
    assert_eq!(object_put.header("x-amz-meta-lines"), Some("3"));
    assert_eq!(object_put.header("x-amz-meta-tier"), Some("system"));
}

#[tokio::test]
async fn lifecycle_rules_are_applied_and_merged() {
    let Some(g) = Garage::start_or_skip() else {
        return;
    };
    let b = S3Bucket::new(&g.settings());
    let days = |r: &aws_sdk_s3::types::LifecycleRule| r.expiration().and_then(|e| e.days());
    let read = || async {
        let out = b
            .client()
            .get_bucket_lifecycle_configuration()
            .bucket(b.bucket_name())
            .send()
            .await
            .unwrap();
        out.rules()
            .iter()
            .map(|r| (r.id().unwrap_or_default().to_string(), r.clone()))
            .collect::<BTreeMap<_, _>>()
    };
    // An operator's own rule, which logship must keep.
    let foreign = vec![LifecycleRule {
        id: "ops-tmp".into(),
        prefix: "tmp/".into(),
        days: 1,
    }];
    b.apply_lifecycle(&foreign).await.unwrap();

    let mut retention = logship::config::bucket::RetentionDays {
        system: 7,
        ..Default::default()
    };
    b.apply_lifecycle(&LifecycleRule::for_tiers("fleet", &retention))
        .await
        .unwrap();
    let rules = read().await;
    assert_eq!(rules.len(), 6, "{rules:#?}");
    assert_eq!(days(&rules["ops-tmp"]), Some(1));
    let system = &rules["logship:fleet/system/"];
    assert_eq!(days(system), Some(7));
    assert_eq!(
        system.filter().and_then(|f| f.prefix()),
        Some("fleet/system/")
    );
    assert_eq!(days(&rules["logship:fleet/builds/"]), Some(30));

    // 0 days = keep forever: the rule goes away, the others stay.
    retention.build = 0;
    b.apply_lifecycle(&LifecycleRule::for_tiers("fleet", &retention))
        .await
        .unwrap();
    let rules = read().await;
    assert_eq!(rules.len(), 5, "{rules:#?}");
    assert!(!rules.contains_key("logship:fleet/builds/"));
    assert!(rules.contains_key("ops-tmp"));
}

#[tokio::test]
async fn wrong_credentials_are_rejected_as_slowly() {
    let Some(g) = Garage::start_or_skip() else {
        return;
    };
    let mut s = g.settings();
    s.secret_access_key = "0".repeat(64);
    let b = S3Bucket::new(&s);
    let e = b
        .put("system/x.ndjson.gz", b"{}\n".to_vec(), &meta())
        .await
        .unwrap_err();
    assert_eq!(e.retry, Retry::Slowly, "{e}");
    assert!(e.message.contains("403"), "{e}");
    assert!(g.list().is_empty());
}

#[tokio::test]
async fn server_errors_resets_and_timeouts_are_retry_soon() {
    let Some(g) = Garage::start_or_skip() else {
        return;
    };
    let proxy = Proxy::start(
        g.s3_addr,
        Faults {
            fail_every: 1,
            ..Default::default()
        },
    )
    .await;
    let b = S3Bucket::new(&g.settings_via(&proxy.endpoint));
    let e = b
        .put("system/x.ndjson.gz", noise(1000), &meta())
        .await
        .unwrap_err();
    assert_eq!(e.retry, Retry::Soon, "{e}");
    proxy.set_faults(Faults {
        reset_every: 1,
        ..Default::default()
    });
    let e = b
        .put("system/x.ndjson.gz", noise(1000), &meta())
        .await
        .unwrap_err();
    assert_eq!(e.retry, Retry::Soon, "{e}");
    // A server that never answers in time: the operation timeout fires.
    proxy.set_faults(Faults {
        delay: std::time::Duration::from_secs(30),
        ..Default::default()
    });
    let mut s = g.settings_via(&proxy.endpoint);
    s.operation_timeout = std::time::Duration::from_millis(500);
    let e = S3Bucket::new(&s)
        .put("system/x.ndjson.gz", noise(1000), &meta())
        .await
        .unwrap_err();
    assert_eq!(e.retry, Retry::Soon, "{e}");
    assert!(e.message.contains("timed out"), "{e}");
    assert!(g.list().is_empty());
}

#[tokio::test]
async fn wrong_content_md5_is_refused_without_storing() {
    let Some(g) = Garage::start_or_skip() else {
        return;
    };
    let b = S3Bucket::new(&g.settings());
    let r = b
        .client()
        .put_object()
        .bucket(b.bucket_name())
        .key("system/bad.ndjson.gz")
        .content_md5(content_md5(b"other bytes"))
        .body(b"{}\n".to_vec().into())
        .send()
        .await;
    let e = r.unwrap_err();
    let code = e
        .as_service_error()
        .and_then(|s| aws_sdk_s3::error::ProvideErrorMetadata::code(s));
    assert_eq!(code, Some("BadDigest"), "{e:?}");
    assert!(g.list().is_empty());
}

/// Not a benchmark with a threshold: prints the time for the README.
#[tokio::test]
async fn measure_16mib_upload() {
    let Some(g) = Garage::start_or_skip() else {
        return;
    };
    let b = S3Bucket::new(&g.settings());
    let body = noise(16 * 1024 * 1024);
    let started = std::time::Instant::now();
    let _ = content_md5(&body);
    eprintln!("of which Content-MD5 of 16 MiB: {:?}", started.elapsed());
    for i in 0..3 {
        let started = std::time::Instant::now();
        b.put(&format!("system/big-{i}.ndjson.gz"), body.clone(), &meta())
            .await
            .unwrap();
        eprintln!("16 MiB PUT to Garage on loopback: {:?}", started.elapsed());
    }
    assert_eq!(g.list().len(), 3);
}

/// `[bucket]` as a user writes it, through `ship::from_config`.
#[tokio::test]
async fn from_config_builds_an_s3_bucket_and_applies_lifecycle() {
    let Some(g) = Garage::start_or_skip() else {
        return;
    };
    let text = format!(
        "[bucket]\nkind = \"s3\"\nendpoint = \"{}\"\nregion = \"auto\"\nbucket = \"{}\"\n\
         access_key_id = \"${{KEY}}\"\nsecret_access_key = \"${{SECRET}}\"\nprefix = \"fleet/\"\n\
         lifecycle = true\n[bucket.retention_days]\nsystem = 3\n",
        g.endpoint, g.bucket
    );
    let (key, secret) = (g.access_key.clone(), g.secret_key.clone());
    let loaded =
        logship::config::load_str(
            std::path::Path::new("agent.toml"),
            text,
            &move |k| match k {
                "KEY" => Some(key.clone()),
                "SECRET" => Some(secret.clone()),
                _ => None,
            },
        )
        .unwrap();
    let cfg = loaded.config;
    assert!(cfg.bucket.validate(&loaded.source).is_empty());
    let b = logship::ship::from_config(&cfg).await.unwrap();
    let k = format!("{}/system/2026/01/02/h.ndjson.gz", cfg.bucket.key_prefix());
    // The SDK's own retries are off (the uploader is the one place that
    // retries): a pooled connection the server closed after the lifecycle
    // PUT comes back as a `Retry::Soon` error, retried here the same way.
    let mut tries = 0;
    loop {
        match b.put(&k, b"{}\n".to_vec(), &meta()).await {
            Ok(()) => break,
            Err(e) if e.retry == logship::ship::Retry::Soon && tries < 3 => tries += 1,
            Err(e) => panic!("PUT failed: {e}"),
        }
    }
    assert_eq!(b.head(&k).await.unwrap().unwrap().size, 3);
    let s3 = S3Bucket::new(&g.settings());
    let rules = s3
        .client()
        .get_bucket_lifecycle_configuration()
        .bucket(&g.bucket)
        .send()
        .await
        .unwrap();
    let system = rules
        .rules()
        .iter()
        .find(|r| r.id() == Some("logship:fleet/system/"))
        .expect("system rule");
    assert_eq!(system.expiration().and_then(|e| e.days()), Some(3));
}
