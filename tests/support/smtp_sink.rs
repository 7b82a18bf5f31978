//! A real SMTP server: `smtp_sink.py` (Python aiosmtpd) writing each message
//! it accepts into a temp directory; optionally with required STARTTLS and a
//! certificate from a throwaway CA ([`super::tls`]). Killed on
//! drop.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};

pub struct SmtpSink {
    pub port: u16,
    child: Child,
    dir: tempfile::TempDir,
    _certs: Option<super::tls::ThrowawayCa>,
}

impl SmtpSink {
    pub fn start() -> SmtpSink {
        SmtpSink::spawn(None)
    }

    /// With STARTTLS required; returns the sink and the CA's PEM path.
    pub fn start_tls() -> (SmtpSink, PathBuf) {
        let certs = super::tls::ThrowawayCa::new();
        let mut sink = SmtpSink::spawn(Some((certs.leaf_cert(), certs.leaf_key())));
        let ca = certs.ca_cert();
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
