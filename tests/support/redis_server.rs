//! A real `redis-server` on a free loopback port, no persistence, killed on
//! drop. `kill` and `restart` (same port) simulate an outage.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub struct RedisServer {
    pub port: u16,
    child: Option<Child>,
    dir: tempfile::TempDir,
    /// With TLS only (no plaintext port): the CA that signed its certificate.
    tls: Option<super::tls::ThrowawayCa>,
}

fn binary() -> PathBuf {
    for p in ["/usr/bin/redis-server", "/usr/local/bin/redis-server"] {
        if std::path::Path::new(p).exists() {
            return PathBuf::from(p);
        }
    }
    panic!("redis-server not found in /usr/bin or /usr/local/bin; run .ci/install-alert-deps.sh");
}

fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind an ephemeral port");
    l.local_addr().expect("local addr").port()
}

impl RedisServer {
    pub fn start() -> RedisServer {
        let mut s = RedisServer {
            port: free_port(),
            child: None,
            dir: tempfile::tempdir().expect("tempdir for redis"),
            tls: None,
        };
        s.spawn();
        s
    }

    /// TLS only (`--port 0 --tls-port`), with a certificate for 127.0.0.1
    /// from a throwaway CA ([`RedisServer::ca_cert`]); clients need no
    /// certificate of their own.
    pub fn start_tls() -> RedisServer {
        let mut s = RedisServer {
            port: free_port(),
            child: None,
            dir: tempfile::tempdir().expect("tempdir for redis"),
            tls: Some(super::tls::ThrowawayCa::new()),
        };
        s.spawn();
        s
    }

    pub fn url(&self) -> String {
        match self.tls {
            Some(_) => format!("rediss://127.0.0.1:{}", self.port),
            None => format!("redis://127.0.0.1:{}", self.port),
        }
    }

    /// The CA a client must trust (TLS servers only).
    pub fn ca_cert(&self) -> PathBuf {
        self.tls.as_ref().expect("a TLS server").ca_cert()
    }

    fn spawn(&mut self) {
        let mut cmd = Command::new(binary());
        match &self.tls {
            None => cmd.args(["--port", &self.port.to_string()]),
            Some(ca) => cmd
                .args(["--port", "0", "--tls-port", &self.port.to_string()])
                .arg("--tls-cert-file")
                .arg(ca.leaf_cert())
                .arg("--tls-key-file")
                .arg(ca.leaf_key())
                .arg("--tls-ca-cert-file")
                .arg(ca.ca_cert())
                .args(["--tls-auth-clients", "no"]),
        };
        let child = cmd
            .args(["--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
            // `DEBUG SLEEP` from loopback clients: tests simulate a slow server.
            .args(["--enable-debug-command", "local"])
            .arg("--dir")
            .arg(self.dir.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start redis-server");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if self.ping() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!("redis-server on port {} did not answer PING", self.port);
    }

    /// Answers PING (plaintext), or accepts connections (TLS: the port is
    /// bound only once the server is ready).
    fn ping(&self) -> bool {
        let Ok(mut s) = TcpStream::connect(("127.0.0.1", self.port)) else {
            return false;
        };
        if self.tls.is_some() {
            return true;
        }
        let _ = s.set_read_timeout(Some(Duration::from_secs(1)));
        let mut buf = [0u8; 7];
        s.write_all(b"PING\r\n").is_ok() && s.read_exact(&mut buf).is_ok() && &buf == b"+PONG\r\n"
    }

    /// Stop the server (SIGKILL) and wait for it to be gone.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Start again on the same port (empty: no persistence).
    pub fn restart(&mut self) {
        self.kill();
        self.spawn();
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.kill();
    }
}
