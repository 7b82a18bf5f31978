//! A throwaway certificate authority for TLS tests, made with the `openssl`
//! CLI: a CA and one leaf certificate for `localhost` / `127.0.0.1`, valid
//! for two days, in a temp directory removed on drop.

use std::path::PathBuf;
use std::process::{Command, Stdio};

pub struct ThrowawayCa {
    dir: tempfile::TempDir,
}

impl ThrowawayCa {
    pub fn new() -> ThrowawayCa {
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
        ThrowawayCa { dir: certs }
    }

    /// The CA's certificate (PEM): what a client is told to trust.
    pub fn ca_cert(&self) -> PathBuf {
        self.dir.path().join("ca.pem")
    }

    /// The server's certificate (PEM), signed by the CA.
    pub fn leaf_cert(&self) -> PathBuf {
        self.dir.path().join("leaf.pem")
    }

    /// The server's private key (PEM).
    pub fn leaf_key(&self) -> PathBuf {
        self.dir.path().join("leaf.key")
    }
}
