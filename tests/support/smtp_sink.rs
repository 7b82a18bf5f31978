//! A real SMTP server: `smtp_sink.py` (Python aiosmtpd) writing each message
//! it accepts into a temp directory; optionally with required STARTTLS and a
//! certificate from a throwaway CA (made with the `openssl` CLI). Killed on
//! drop.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};

pub struct SmtpSink {
    pub port: u16,
    child: Child,
    dir: tempfile::TempDir,
    _certs: Option<tempfile::TempDir>,
}

impl SmtpSink {
    pub fn start() -> SmtpSink {
        SmtpSink::spawn(None)
    }

    /// With STARTTLS required; returns the sink and the CA's PEM path.
    pub fn start_tls() -> (SmtpSink, PathBuf) {
        let certs = tempfile::tempdir().expect("tempdir for certs");
        let d = certs.path();
        let openssl = |args: &[&str]| {
            let ok = Command::new("openssl")
                .args(args)
                .current_dir(d)
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .expect("run openssl")
                .success();
            assert!(ok, "openssl {args:?} failed");
        };
        openssl(&[
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "2",
            "-keyout",
            "ca.key",
            "-out",
            "ca.pem",
            "-subj",
            "/CN=logship test CA",
        ]);
        openssl(&[
            "req",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            "leaf.key",
            "-out",
            "leaf.csr",
            "-subj",
            "/CN=localhost",
        ]);
        std::fs::write(
            d.join("ext.cnf"),
            "subjectAltName=DNS:localhost,IP:127.0.0.1\nbasicConstraints=CA:FALSE\n",
        )
        .expect("write ext");
        openssl(&[
            "x509",
            "-req",
            "-in",
            "leaf.csr",
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-out",
            "leaf.pem",
            "-days",
            "2",
            "-extfile",
            "ext.cnf",
        ]);
        let mut sink = SmtpSink::spawn(Some((d.join("leaf.pem"), d.join("leaf.key"))));
        let ca = d.join("ca.pem");
        // Keep the cert dir alive as long as the sink.
        sink._certs = Some(certs);
        (sink, ca)
    }

    fn spawn(tls: Option<(PathBuf, PathBuf)>) -> SmtpSink {
        let dir = tempfile::tempdir().expect("tempdir for smtp sink");
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/support/smtp_sink.py");
        let mut cmd = Command::new("python3");
        cmd.arg(script).arg(dir.path());
        if let Some((cert, key)) = &tls {
            cmd.arg(cert).arg(key);
        }
        let mut child = cmd
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start python3 (needed for the SMTP sink; run .ci/install-alert-deps.sh)");
        let mut line = String::new();
        let stdout = child.stdout.take().expect("piped stdout");
        BufReader::new(stdout)
            .read_line(&mut line)
            .expect("read port");
        let port = line.trim().parse().unwrap_or_else(|_| {
            let _ = child.kill();
            panic!("SMTP sink did not print a port (is aiosmtpd installed? run .ci/install-alert-deps.sh); got {line:?}")
        });
        SmtpSink {
            port,
            child,
            dir,
            _certs: None,
        }
    }

    /// The messages received so far, as text.
    pub fn messages(&self) -> Vec<String> {
        let mut out = Vec::new();
        for entry in std::fs::read_dir(self.dir.path())
            .expect("read sink dir")
            .flatten()
        {
            if entry.path().extension().is_some_and(|e| e == "eml") {
                out.push(std::fs::read_to_string(entry.path()).expect("read message"));
            }
        }
        out
    }
}

impl Drop for SmtpSink {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
