//! Sealing: deterministic gzip of a finished segment, off the read path.
//!
//! The same segment bytes always give the same gzip bytes (fixed level, no
//! file name, header mtime 0), so a re-upload after a crash writes the same
//! object: uploads are idempotent. Compression streams from file to file in
//! fixed-size chunks, so memory does not grow with the segment.

use std::fs::File;
use std::io::{self, BufWriter, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::mpsc;

use flate2::{Compression, GzBuilder};

use crate::ship::uploader::{UploadJob, UploadTicket, Uploader};
use crate::ship::ObjectMeta;

/// Compress the first `len` bytes of `src` into `dst`.
pub fn compress(src: &Path, len: u64, dst: &Path, level: u32) -> io::Result<u64> {
    let input = File::open(src)?.take(len);
    let out = BufWriter::with_capacity(256 * 1024, File::create(dst)?);
    let mut gz = GzBuilder::new()
        .mtime(0)
        .write(out, Compression::new(level));
    let mut reader = io::BufReader::with_capacity(256 * 1024, input);
    let copied = io::copy(&mut reader, &mut gz)?;
    if copied != len {
        return Err(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            format!(
                "{} is shorter ({copied} bytes) than its committed length {len}",
                src.display()
            ),
        ));
    }
    let mut out = gz.finish()?;
    out.flush()?;
    Ok(copied)
}

/// Where the compressed file of an upload waits until it is uploaded: the
/// one spelling of the spool file name (`{ticket}.ndjson.gz`).
pub fn spool_path(spool: &Path, ticket: UploadTicket) -> PathBuf {
    spool.join(format!("{}.ndjson.gz", ticket.0))
}

/// A sealed segment to compress and hand to the uploader.
#[derive(Debug, Clone)]
pub struct SealJob {
    pub ticket: UploadTicket,
    pub src: PathBuf,
    pub len: u64,
    pub gz: PathBuf,
    pub key: String,
    pub meta: ObjectMeta,
}

/// A thread that compresses sealed segments and submits them for upload.
/// Compression runs here, not on the pipeline thread, so reading goes on
/// while a 16 MiB segment is deflated.
pub fn spawn_sealer(level: u32, uploader: Uploader) -> io::Result<mpsc::Sender<SealJob>> {
    let (tx, rx) = mpsc::channel::<SealJob>();
    std::thread::Builder::new()
        .name("logship-seal".into())
        .spawn(move || {
            for job in rx {
                if let Some(dir) = job.gz.parent() {
                    let _ = std::fs::create_dir_all(dir);
                }
                match compress(&job.src, job.len, &job.gz, level) {
                    Ok(_) => uploader.submit(UploadJob {
                        ticket: job.ticket,
                        key: job.key,
                        gz_path: job.gz,
                        meta: job.meta,
                    }),
                    // The segment stays sealed and is retried at next start.
                    Err(e) => tracing::error!(segment = %job.src.display(), error = %e, "cannot compress sealed segment; will retry at next start"),
                }
            }
        })?;
    Ok(tx)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gzip_is_deterministic_and_round_trips() {
        let d = tempfile::tempdir().unwrap();
        let src = d.path().join("s.ndjson");
        let body = b"{\"a\":1}\n".repeat(10_000);
        std::fs::write(&src, [&body[..], b"uncommitted tail"].concat()).unwrap();
        let (a, b) = (d.path().join("a.gz"), d.path().join("b.gz"));
        compress(&src, body.len() as u64, &a, 6).unwrap();
        std::thread::sleep(std::time::Duration::from_millis(1100));
        compress(&src, body.len() as u64, &b, 6).unwrap();
        let (ga, gb) = (std::fs::read(&a).unwrap(), std::fs::read(&b).unwrap());
        assert_eq!(ga, gb);
        assert_eq!(&ga[4..8], &[0, 0, 0, 0], "mtime is zero");
        let mut out = Vec::new();
        flate2::read::GzDecoder::new(&ga[..])
            .read_to_end(&mut out)
            .unwrap();
        assert_eq!(out, body);
    }
}
