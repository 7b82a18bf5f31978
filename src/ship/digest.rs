//! Fingerprints of an object's bytes, computed once, where the bytes are made.
//!
//! Every PUT carries `Content-MD5` (SPEC §3), and over plain HTTP its SigV4
//! signature covers the payload's SHA-256. Computing them at upload time
//! means reading the whole object into memory first (one object per upload in
//! flight) and hashing it again on every attempt. Instead the seal thread
//! hashes the gzip bytes as it writes them ([`DigestWriter`]), and the upload
//! streams the file from disk with the digests it was handed
//! ([`ObjectFile`]). If the file changed on disk after sealing, the bucket
//! refuses the PUT (`BadDigest`) rather than storing different bytes; the
//! segment stays on disk and is compressed afresh at the next start.

use std::fs::File;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

use base64::Engine;
use md5::{Digest as _, Md5};
use sha2::Sha256;

/// MD5 and SHA-256 of an object's exact bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Digest {
    pub md5: [u8; 16],
    pub sha256: [u8; 32],
}

impl Digest {
    /// The `Content-MD5` header value: base64 of the MD5.
    pub fn content_md5(&self) -> String {
        base64::engine::general_purpose::STANDARD.encode(self.md5)
    }

    /// The `x-amz-content-sha256` value of a signed payload: lowercase hex.
    pub fn sha256_hex(&self) -> String {
        use std::fmt::Write as _;
        self.sha256
            .iter()
            .fold(String::with_capacity(64), |mut s, b| {
                let _ = write!(s, "{b:02x}");
                s
            })
    }

    /// Length and digests of a file, read in fixed-size chunks (for objects
    /// that reach the uploader without digests).
    pub fn of_file(path: &Path) -> io::Result<(u64, Digest)> {
        let mut w = DigestWriter::new(io::sink());
        let mut f = File::open(path)?;
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            let n = f.read(&mut buf)?;
            if n == 0 {
                break;
            }
            w.write_all(&buf[..n])?;
        }
        let (_, len, digest) = w.finish();
        Ok((len, digest))
    }
}

/// A writer that hashes (MD5 and SHA-256) and counts everything written
/// through it to `inner`.
pub struct DigestWriter<W> {
    inner: W,
    md5: Md5,
    sha256: Sha256,
    len: u64,
}

impl<W: Write> DigestWriter<W> {
    pub fn new(inner: W) -> DigestWriter<W> {
        DigestWriter {
            inner,
            md5: Md5::new(),
            sha256: Sha256::new(),
            len: 0,
        }
    }

    /// The inner writer (not flushed), the byte count and the digests.
    pub fn finish(self) -> (W, u64, Digest) {
        let digest = Digest {
            md5: self.md5.finalize().into(),
            sha256: self.sha256.finalize().into(),
        };
        (self.inner, self.len, digest)
    }
}

impl<W: Write> Write for DigestWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.md5.update(&buf[..n]);
        self.sha256.update(&buf[..n]);
        self.len += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// A sealed object on disk: what a PUT streams, and its fingerprints.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ObjectFile {
    pub path: PathBuf,
    pub len: u64,
    pub digest: Digest,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writer_and_file_agree_with_one_shot_hashes() {
        let d = tempfile::tempdir().unwrap();
        let path = d.path().join("o.gz");
        let bytes: Vec<u8> = (0..200_000u32).map(|i| (i * 7 % 251) as u8).collect();
        let mut w = DigestWriter::new(File::create(&path).unwrap());
        for chunk in bytes.chunks(4097) {
            w.write_all(chunk).unwrap();
        }
        let (_, len, digest) = w.finish();
        assert_eq!(len, bytes.len() as u64);
        assert_eq!(digest.md5, <[u8; 16]>::from(Md5::digest(&bytes)));
        assert_eq!(digest.sha256, <[u8; 32]>::from(Sha256::digest(&bytes)));
        assert_eq!(Digest::of_file(&path).unwrap(), (len, digest));
        // The well-known values for empty input, in their wire forms.
        let (_, _, empty) = DigestWriter::new(io::sink()).finish();
        assert_eq!(empty.content_md5(), "1B2M2Y8AsgTpgAmY7PhCfg==");
        assert_eq!(
            empty.sha256_hex(),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
    }
}
