//! A throwaway Garage (S3-compatible) server for tests.
//!
//! Garage is AGPL and is only ever run as a separate process. The binary is
//! found via `$LOGSHIP_GARAGE`, else `~/.cache/logship-ci/garage/bin/garage`
//! (where `.ci/install-garage.sh` puts it). A missing binary fails the test
//! with instructions, unless `LOGSHIP_SKIP_S3_TESTS=1`, in which case
//! [`Garage::start_or_skip`] returns `None`.
//!
//! Each instance is single-node with its own temp dir and free loopback
//! ports, so tests run in parallel. `kill()` + `restart()` keep the data and
//! ports (Garage keeps data across `kill -9`); drop kills the process.

use std::collections::{BTreeMap, HashMap};
use std::hash::{BuildHasher, Hasher};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use logship::ship::s3::{S3Bucket, S3Settings};

pub struct Garage {
    /// `http://127.0.0.1:{port}`: the S3 API.
    pub endpoint: String,
    pub bucket: String,
    pub access_key: String,
    pub secret_key: String,
    pub region: String,
    pub s3_addr: SocketAddr,
    child: Option<Child>,
    config: PathBuf,
    dir: tempfile::TempDir,
}

/// One stored object, for assertions.
#[derive(Debug, Clone)]
pub struct StoredObject {
    pub bytes: Vec<u8>,
    pub metadata: HashMap<String, String>,
    pub content_type: Option<String>,
    pub content_encoding: Option<String>,
    pub e_tag: Option<String>,
}

fn binary() -> PathBuf {
    if let Some(p) = std::env::var_os("LOGSHIP_GARAGE").filter(|p| !p.is_empty()) {
        return PathBuf::from(p);
    }
    let cache = std::env::var_os("LOGSHIP_CI_CACHE")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(std::env::var_os("HOME").unwrap_or_default()).join(".cache/logship-ci")
        });
    cache.join("garage/bin/garage")
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("binding an ephemeral loopback port")
}

fn random_hex(len: usize) -> String {
    let mut out = String::new();
    while out.len() < len {
        let mut h = std::collections::hash_map::RandomState::new().build_hasher();
        h.write_u128(
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap_or_default()
                .as_nanos(),
        );
        out.push_str(&format!("{:016x}", h.finish()));
    }
    out.truncate(len);
    out
}

impl Garage {
    /// `None` (and a note on stderr) when `LOGSHIP_SKIP_S3_TESTS=1`.
    pub fn start_or_skip() -> Option<Garage> {
        if std::env::var("LOGSHIP_SKIP_S3_TESTS").as_deref() == Ok("1") {
            eprintln!("LOGSHIP_SKIP_S3_TESTS=1: skipping a test that needs Garage");
            return None;
        }
        Some(Garage::start())
    }

    /// Start a fresh server; panics with instructions if Garage is missing.
    pub fn start() -> Garage {
        let bin = binary();
        assert!(
            bin.exists(),
            "Garage is needed for the S3 tests but {} does not exist. Install it with \
             `bash .ci/install-garage.sh` (or set LOGSHIP_GARAGE to a garage 2.x binary), \
             or set LOGSHIP_SKIP_S3_TESTS=1 to skip these tests.",
            bin.display()
        );
        let dir = tempfile::tempdir().expect("creating a temp dir for Garage");
        let (s3_port, rpc_port, admin_port) = (free_port(), free_port(), free_port());
        let path = dir.path().display().to_string();
        let config = dir.path().join("garage.toml");
        let text = format!(
            r#"metadata_dir = "{path}/meta"
data_dir = "{path}/data"
db_engine = "sqlite"
replication_factor = 1
rpc_bind_addr = "127.0.0.1:{rpc_port}"
rpc_public_addr = "127.0.0.1:{rpc_port}"
rpc_secret = "{rpc_secret}"

[s3_api]
s3_region = "auto"
api_bind_addr = "127.0.0.1:{s3_port}"
root_domain = ".s3.garage.localhost"

[admin]
api_bind_addr = "127.0.0.1:{admin_port}"
admin_token = "{admin_token}"
"#,
            rpc_secret = random_hex(64),
            admin_token = random_hex(32),
        );
        std::fs::write(&config, text).expect("writing garage.toml");
        let s3_addr: SocketAddr = ([127, 0, 0, 1], s3_port).into();
        let mut g = Garage {
            endpoint: format!("http://{s3_addr}"),
            bucket: "logship-test".into(),
            access_key: format!("GK{}", random_hex(24)),
            secret_key: random_hex(64),
            region: "auto".into(),
            s3_addr,
            child: None,
            config,
            dir,
        };
        g.restart();
        g
    }

    /// Start the process (again, after [`Garage::kill`]) and wait until the
    /// bucket answers.
    pub fn restart(&mut self) {
        assert!(self.child.is_none(), "Garage is already running");
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.path().join("garage.log"))
            .expect("opening garage.log");
        let child = Command::new(binary())
            .arg("-c")
            .arg(&self.config)
            .args(["server", "--single-node", "--default-bucket"])
            .env("GARAGE_DEFAULT_ACCESS_KEY", &self.access_key)
            .env("GARAGE_DEFAULT_SECRET_KEY", &self.secret_key)
            .env("GARAGE_DEFAULT_BUCKET", &self.bucket)
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("cloning log handle"))
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| panic!("starting {}: {e}", binary().display()));
        self.child = Some(child);
        self.wait_ready();
    }

    /// `kill -9`: the data stays for [`Garage::restart`].
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    fn wait_ready(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Some(status) = self
                .child
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten())
            {
                panic!(
                    "Garage exited with {status} during startup; log:\n{}",
                    self.log()
                );
            }
            if TcpStream::connect_timeout(&self.s3_addr, Duration::from_millis(200)).is_ok()
                && self.block_on(|b| async move {
                    b.client()
                        .list_objects_v2()
                        .bucket(b.bucket_name())
                        .send()
                        .await
                        .is_ok()
                })
            {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "Garage did not become ready in 60s; log:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The server's log so far (for failure messages).
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("garage.log")).unwrap_or_default()
    }

    /// Settings pointing at this server (or at `endpoint`, e.g. a proxy).
    pub fn settings_via(&self, endpoint: &str) -> S3Settings {
        S3Settings {
            endpoint: endpoint.to_string(),
            region: self.region.clone(),
            bucket: self.bucket.clone(),
            access_key_id: self.access_key.clone(),
            secret_access_key: self.secret_key.clone(),
            connect_timeout: Duration::from_secs(2),
            operation_timeout: Duration::from_secs(20),
        }
    }

    pub fn settings(&self) -> S3Settings {
        self.settings_via(&self.endpoint)
    }

    /// Run an async check against the bucket from sync code, on a thread of
    /// its own so it works inside or outside a tokio runtime.
    fn block_on<F, Fut, T>(&self, f: F) -> T
    where
        F: FnOnce(S3Bucket) -> Fut + Send + 'static,
        Fut: std::future::Future<Output = T>,
        T: Send + 'static,
    {
        let settings = self.settings();
        std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("building a runtime");
            rt.block_on(f(S3Bucket::new(&settings)))
        })
        .join()
        .expect("bucket check thread panicked")
    }

    /// The bucket's lifecycle rules: id -> (prefix, expiration days).
    pub fn lifecycle(&self) -> BTreeMap<String, (String, i32)> {
        self.block_on(|b| async move {
            let out = match b
                .client()
                .get_bucket_lifecycle_configuration()
                .bucket(b.bucket_name())
                .send()
                .await
            {
                Ok(out) => out,
                Err(_) => return BTreeMap::new(),
            };
            out.rules()
                .iter()
                .map(|r| {
                    (
                        r.id().unwrap_or_default().to_string(),
                        (
                            r.filter()
                                .and_then(|f| f.prefix())
                                .unwrap_or_default()
                                .to_string(),
                            r.expiration().and_then(|e| e.days()).unwrap_or(0),
                        ),
                    )
                })
                .collect()
        })
    }

    /// Set lifecycle rules the way an operator would (merged with logship's).
    pub fn apply_lifecycle(&self, rules: Vec<logship::ship::s3::LifecycleRule>) {
        self.block_on(|b| async move {
            b.apply_lifecycle(&rules)
                .await
                .expect("applying lifecycle rules")
        })
    }

    /// Every key in the bucket with its size.
    pub fn list(&self) -> BTreeMap<String, i64> {
        self.block_on(|b| async move {
            let mut out = BTreeMap::new();
            let mut token = None;
            loop {
                let page = b
                    .client()
                    .list_objects_v2()
                    .bucket(b.bucket_name())
                    .set_continuation_token(token)
                    .send()
                    .await
                    .expect("listing the bucket");
                for o in page.contents() {
                    out.insert(
                        o.key().unwrap_or_default().to_string(),
                        o.size().unwrap_or(0),
                    );
                }
                token = page.next_continuation_token().map(str::to_string);
                if token.is_none() {
                    return out;
                }
            }
        })
    }

    /// Every event in every object of the bucket (gunzipped and parsed).
    pub fn events(&self) -> Vec<logship::event::Event> {
        use std::io::Read;
        let mut out = Vec::new();
        for key in self.list().keys() {
            let obj = self.get(key).expect("listed object");
            let mut raw = Vec::new();
            flate2::read::MultiGzDecoder::new(&obj.bytes[..])
                .read_to_end(&mut raw)
                .expect("objects are gzip");
            out.extend(super::agent::parse_lines(&raw));
        }
        out
    }

    /// One object's bytes and headers, or `None` if absent.
    pub fn get(&self, key: &str) -> Option<StoredObject> {
        let key = key.to_string();
        self.block_on(|b| async move {
            let o = b
                .client()
                .get_object()
                .bucket(b.bucket_name())
                .key(&key)
                .send()
                .await
                .ok()?;
            let (metadata, content_type, content_encoding, e_tag) = (
                o.metadata().cloned().unwrap_or_default(),
                o.content_type().map(str::to_string),
                o.content_encoding().map(str::to_string),
                o.e_tag().map(str::to_string),
            );
            let bytes = o
                .body
                .collect()
                .await
                .expect("reading object body")
                .into_bytes()
                .to_vec();
            Some(StoredObject {
                bytes,
                metadata,
                content_type,
                content_encoding,
                e_tag,
            })
        })
    }
}

impl Drop for Garage {
    fn drop(&mut self) {
        self.kill();
    }
}
