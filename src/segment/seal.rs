//! Sealing: deterministic gzip of a finished segment, off the read path.
//!
//! Compression is libdeflate's, one gzip member per block of at most
//! [`BLOCK`] bytes, each block cut after its last complete line. A sequence
//! of members is one valid gzip file (RFC 1952 §2.2): `gzip -d`, `zcat`,
//! Python's `gzip`, DuckDB's `read_json` and browsers' `DecompressionStream`
//! read it whole. libdeflate compresses a block in memory in one call, which
//! is what makes it cheaper than a streaming deflate for the same ratio (see
//! BENCHMARKS.md); the cost of cutting is the ~18 bytes of each member's
//! header and trailer and a cold 32 KiB window at each cut, under 1 % at
//! 1 MiB.
//!
//! Invariants:
//! - The same segment bytes at the same level always give the same object
//!   bytes (block cuts depend only on the bytes; no file name; header mtime
//!   0), so a re-upload after a crash writes the same object: uploads are
//!   idempotent. (A different libdeflate version may produce other bytes;
//!   the version is pinned by Cargo.lock.)
//! - Memory is one input block, one output block and the compressor's
//!   tables, whatever the segment size.
//! - The object's length, MD5 and SHA-256 are computed as it is written
//!   ([`DigestWriter`]), so the upload streams the file and never reads it
//!   back to hash it.
//!
//! With retention by level (SPEC §13) a segment becomes one object per
//! retention class ([`SegmentCompressor::compress_classes`]): each line
//! goes to its level's class, each class is cut into members the same way
//! (after whole lines, at most [`BLOCK`] bytes, a longer line alone), and
//! each object's metadata (first/last `ts`, lines) is computed from its own
//! lines. The split depends only on the segment's bytes and the classes, so
//! a re-upload after a crash writes the same objects again.

use std::fs::File;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::mpsc;

use libdeflater::{CompressionLvl, Compressor};

use crate::event::Level;
use crate::ship::digest::{Digest, DigestWriter};
use crate::ship::retention::{class_key, Classes};
use crate::ship::uploader::{UploadJob, UploadTicket, Uploader};
use crate::ship::ObjectMeta;

/// Most input bytes in one gzip member.
pub const BLOCK: usize = 1 << 20;

/// Compresses segments into multi-member gzip files; reuses its buffers and
/// tables from one segment to the next.
pub struct SegmentCompressor {
    deflate: Compressor,
    input: Vec<u8>,
    output: Vec<u8>,
}

impl SegmentCompressor {
    /// `level` is libdeflate's, 1 (fastest) to 12 (smallest); values outside
    /// are clamped (the config allows 1..=9).
    pub fn new(level: u32) -> SegmentCompressor {
        let lvl = CompressionLvl::new(level.clamp(1, 12) as i32).unwrap_or_default();
        let mut deflate = Compressor::new(lvl);
        let bound = deflate.gzip_compress_bound(BLOCK);
        SegmentCompressor {
            deflate,
            input: vec![0; BLOCK],
            output: vec![0; bound],
        }
    }

    /// Compress the first `len` bytes of `src` into `dst`. Returns the
    /// object's length and digests.
    pub fn compress(&mut self, src: &Path, len: u64, dst: &Path) -> io::Result<(u64, Digest)> {
        let mut input = File::open(src)?.take(len);
        let mut out = DigestWriter::new(File::create(dst)?);
        let (mut carry, mut read, mut members) = (0usize, 0u64, 0u32);
        loop {
            let n = read_full(&mut input, &mut self.input[carry..])?;
            read += n as u64;
            let filled = carry + n;
            let end = filled < BLOCK;
            if filled == 0 && members > 0 {
                break;
            }
            // A full block is cut after its last newline (segments hold whole
            // lines; a block without one is cut where it is full).
            let cut = match end {
                true => filled,
                false => memchr::memrchr(b'\n', &self.input[..filled]).map_or(filled, |i| i + 1),
            };
            let z = self
                .deflate
                .gzip_compress(&self.input[..cut], &mut self.output)
                .map_err(|e| io::Error::other(format!("libdeflate: {e}")))?;
            out.write_all(&self.output[..z])?;
            members += 1;
            self.input.copy_within(cut..filled, 0);
            carry = filled - cut;
            if end {
                break;
            }
        }
        if read != len {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                format!(
                    "{} is shorter ({read} bytes) than its committed length {len}",
                    src.display()
                ),
            ));
        }
        // Not fsynced: the spool is made again from the segments at start.
        let (_, gz_len, digest) = out.finish();
        Ok((gz_len, digest))
    }
}

/// One class object written by [`SegmentCompressor::compress_classes`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClassObject {
    pub days: u32,
    pub path: PathBuf,
    pub len: u64,
    pub digest: Digest,
    /// First/last `ts` and lines of this object's events (tier and
    /// instance as given).
    pub meta: ObjectMeta,
}

/// A class object being written.
struct ClassOut {
    days: u32,
    path: PathBuf,
    out: Option<DigestWriter<File>>,
    /// Lines not yet compressed (whole lines, at most [`BLOCK`] bytes
    /// unless one line is longer).
    pending: Vec<u8>,
    meta: ObjectMeta,
}

impl SegmentCompressor {
    /// Split the first `len` bytes of `src` by level into one gzip file per
    /// retention class that has events, written beside `gz` (its name with
    /// `.retain-{days}d` before `.ndjson.gz`). `meta` gives the tier and
    /// instance; the rest of each object's metadata comes from its lines.
    /// Classes without events get no file. Objects come shortest class first.
    pub fn compress_classes(
        &mut self,
        src: &Path,
        len: u64,
        gz: &Path,
        classes: &Classes,
        meta: &ObjectMeta,
    ) -> io::Result<Vec<ClassObject>> {
        let mut outs: Vec<ClassOut> = classes
            .distinct()
            .into_iter()
            .map(|days| ClassOut {
                days,
                path: class_spool_path(gz, days),
                out: None,
                pending: Vec::new(),
                meta: ObjectMeta {
                    tier: meta.tier.clone(),
                    instance_id: meta.instance_id.clone(),
                    ..ObjectMeta::default()
                },
            })
            .collect();
        let mut input = io::BufReader::with_capacity(256 * 1024, File::open(src)?.take(len));
        let mut line = Vec::new();
        let mut read = 0u64;
        loop {
            line.clear();
            let n = io::BufRead::read_until(&mut input, b'\n', &mut line)?;
            if n == 0 {
                break;
            }
            read += n as u64;
            let (ts, lvl) = ts_and_level(&line);
            let days = classes.days(lvl);
            let Some(c) = outs.iter_mut().find(|c| c.days == days) else {
                continue; // every level's days are among the distinct ones
            };
            if !c.pending.is_empty() && c.pending.len() + line.len() > BLOCK {
                self.member(c)?;
            }
            c.pending.extend_from_slice(&line);
            if c.pending.len() >= BLOCK {
                self.member(c)?;
            }
            let m = &mut c.meta;
            if let Some(ts) = ts {
                (m.first_ts, m.last_ts) = match m.lines {
                    0 => (ts, ts),
                    _ => (m.first_ts.min(ts), m.last_ts.max(ts)),
                };
            }
            m.lines += 1;
        }
        if read != len {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                format!(
                    "{} is shorter ({read} bytes) than its committed length {len}",
                    src.display()
                ),
            ));
        }
        let mut done = Vec::new();
        for mut c in outs {
            if !c.pending.is_empty() {
                self.member(&mut c)?;
            }
            let Some(out) = c.out else {
                continue;
            };
            let (_, gz_len, digest) = out.finish();
            done.push(ClassObject {
                days: c.days,
                path: c.path,
                len: gz_len,
                digest,
                meta: c.meta,
            });
        }
        Ok(done)
    }

    /// Compress a class's pending lines as one gzip member.
    fn member(&mut self, c: &mut ClassOut) -> io::Result<()> {
        let bound = self.deflate.gzip_compress_bound(c.pending.len());
        if self.output.len() < bound {
            self.output.resize(bound, 0);
        }
        let z = self
            .deflate
            .gzip_compress(&c.pending, &mut self.output)
            .map_err(|e| io::Error::other(format!("libdeflate: {e}")))?;
        if c.out.is_none() {
            c.out = Some(DigestWriter::new(File::create(&c.path)?));
        }
        if let Some(out) = c.out.as_mut() {
            out.write_all(&self.output[..z])?;
        }
        c.pending.clear();
        Ok(())
    }
}

/// The `ts` and `lvl` of a segment line as the agent wrote it
/// (`{"ts":N,"instanceId":..,"tier":..,"kind":..,"lvl":"..",...}`). The
/// first `"lvl":"` in such a line is the key: inside a JSON string every
/// `"` is escaped, so `l"` cannot occur there. A line that does not parse
/// (not written by this agent) goes to the error class, kept longest.
fn ts_and_level(line: &[u8]) -> (Option<i64>, Level) {
    let ts = line.strip_prefix(b"{\"ts\":").and_then(|rest| {
        let end = rest
            .iter()
            .position(|b| !(b.is_ascii_digit() || *b == b'-'))
            .unwrap_or(rest.len());
        std::str::from_utf8(&rest[..end]).ok()?.parse().ok()
    });
    let lvl = memchr::memmem::find(line, b"\"lvl\":\"")
        .map(|i| &line[i + 7..])
        .and_then(|v| {
            [Level::Debug, Level::Info, Level::Warn, Level::Error]
                .into_iter()
                .find(|l| {
                    v.strip_prefix(l.as_str().as_bytes())
                        .is_some_and(|r| r.first() == Some(&b'"'))
                })
        })
        .unwrap_or(Level::Error);
    (ts, lvl)
}

/// Where the `days` class object of the upload spooled at `gz` waits:
/// `{ticket}.retain-{days}d.ndjson.gz`.
pub fn class_spool_path(gz: &Path, days: u32) -> PathBuf {
    let name = gz.file_name().and_then(|n| n.to_str()).unwrap_or("segment");
    let stem = name.strip_suffix(".ndjson.gz").unwrap_or(name);
    gz.with_file_name(format!("{stem}.retain-{days}d.ndjson.gz"))
}

/// Read until `buf` is full or the input ends; the number of bytes read.
fn read_full(r: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match r.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

/// Compress the first `len` bytes of `src` into `dst` at `level` (a fresh
/// compressor each call; the seal thread keeps one).
pub fn compress(src: &Path, len: u64, dst: &Path, level: u32) -> io::Result<(u64, Digest)> {
    SegmentCompressor::new(level).compress(src, len, dst)
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

/// Run `write` (compressing one job into the spool); while the spool's
/// filesystem is full or read-only (`ops::disk`), wait and try again (1 s,
/// doubling to 30 s) rather than give the segment up until the next start:
/// uploads are what frees space. `partial` lists the files a failed attempt
/// may leave, removed before waiting.
fn waiting_for_disk<T>(
    job: &SealJob,
    partial: &dyn Fn() -> Vec<PathBuf>,
    mut write: impl FnMut() -> io::Result<T>,
) -> io::Result<T> {
    let mut wait = std::time::Duration::from_secs(1);
    loop {
        if let Some(dir) = job.gz.parent() {
            let _ = std::fs::create_dir_all(dir);
        }
        match write() {
            Err(e) if crate::ops::disk::classify(&e).is_some() => {
                for f in partial() {
                    let _ = std::fs::remove_file(f);
                }
                tracing::warn!(segment = %job.src.display(), error = %e, "cannot write the compressed segment to the spool; retrying in {}s", wait.as_secs());
                std::thread::sleep(wait);
                wait = (wait * 2).min(std::time::Duration::from_secs(30));
            }
            r => return r,
        }
    }
}

/// A thread that compresses sealed segments and submits them for upload.
/// Compression runs here, not on the pipeline thread, so reading goes on
/// while a segment is deflated.
pub fn spawn_sealer(level: u32, uploader: Uploader) -> io::Result<mpsc::Sender<SealJob>> {
    let (tx, rx) = mpsc::channel::<SealJob>();
    std::thread::Builder::new()
        .name("logship-seal".into())
        .spawn(move || {
            let mut z = SegmentCompressor::new(level);
            for job in rx {
                // The classes in effect now: a reload that changes them
                // applies from the next sealed segment on.
                let sent = match uploader.retention() {
                    None => waiting_for_disk(
                        &job,
                        &|| vec![job.gz.clone()],
                        || z.compress(&job.src, job.len, &job.gz),
                    )
                    .map(|(len, digest)| {
                        uploader.submit_sealed(
                            UploadJob {
                                ticket: job.ticket,
                                key: job.key,
                                gz_path: job.gz,
                                meta: job.meta,
                            },
                            len,
                            digest,
                        )
                    }),
                    Some((prefix, classes)) => {
                        let partial = || {
                            let days = classes.distinct().into_iter();
                            days.map(|d| class_spool_path(&job.gz, d)).collect()
                        };
                        waiting_for_disk(&job, &partial, || {
                            z.compress_classes(&job.src, job.len, &job.gz, &classes, &job.meta)
                        })
                        .map(|objects| {
                            let parts = objects
                                .into_iter()
                                .map(|o| {
                                    let job = UploadJob {
                                        ticket: job.ticket,
                                        key: class_key(&prefix, o.days, &job.key),
                                        gz_path: o.path,
                                        meta: o.meta,
                                    };
                                    (job, o.len, o.digest)
                                })
                                .collect();
                            uploader.submit_group(job.ticket, parts)
                        })
                    }
                };
                if let Err(e) = sent {
                    // The segment stays sealed and is retried at next start.
                    tracing::error!(segment = %job.src.display(), error = %e, "cannot compress sealed segment; will retry at next start");
                }
            }
        })?;
    Ok(tx)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Lines of varied content, `n` bytes or a little more.
    fn lines(n: usize) -> Vec<u8> {
        let mut out = Vec::with_capacity(n + 100);
        let mut i = 0u64;
        while out.len() < n {
            out.extend_from_slice(
                format!(
                    "{{\"seq\":{i},\"msg\":\"worker {} served {}\"}}\n",
                    i % 7,
                    i * 31
                )
                .as_bytes(),
            );
            i += 1;
        }
        out
    }

    fn gunzip(gz: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        flate2::read::MultiGzDecoder::new(gz)
            .read_to_end(&mut out)
            .unwrap();
        out
    }

    #[test]
    fn gzip_is_deterministic_and_round_trips() {
        let d = tempfile::tempdir().unwrap();
        let src = d.path().join("s.ndjson");
        // Several blocks, so the object has several members.
        let body = lines(3 * BLOCK + 12345);
        std::fs::write(&src, [&body[..], b"uncommitted tail"].concat()).unwrap();
        let (a, b) = (d.path().join("a.gz"), d.path().join("b.gz"));
        let (len_a, dig_a) = compress(&src, body.len() as u64, &a, 6).unwrap();
        std::thread::sleep(std::time::Duration::from_millis(1100));
        // The same compressor again, after another segment: same bytes.
        let mut z = SegmentCompressor::new(6);
        z.compress(&src, 1000, &b).unwrap();
        let (len_b, dig_b) = z.compress(&src, body.len() as u64, &b).unwrap();
        let (ga, gb) = (std::fs::read(&a).unwrap(), std::fs::read(&b).unwrap());
        assert_eq!(ga, gb);
        assert_eq!((len_a, dig_a), (len_b, dig_b));
        assert_eq!(Digest::of_file(&a).unwrap(), (len_a, dig_a));
        assert_eq!(&ga[4..8], &[0, 0, 0, 0], "mtime is zero");
        assert_eq!(gunzip(&ga), body);
        // Members start at line boundaries: each decodes to whole lines.
        let mut members = 0;
        let mut rest = &ga[..];
        while !rest.is_empty() {
            let mut dec = flate2::bufread::GzDecoder::new(rest);
            let mut one = Vec::new();
            dec.read_to_end(&mut one).unwrap();
            assert!(one.ends_with(b"\n") && one.len() <= BLOCK);
            rest = dec.into_inner();
            members += 1;
        }
        assert_eq!(members, 4);
    }

    #[test]
    fn every_level_round_trips_and_edge_sizes_are_valid_gzip() {
        let d = tempfile::tempdir().unwrap();
        let src = d.path().join("s.ndjson");
        let body = lines(BLOCK);
        std::fs::write(&src, &body).unwrap();
        let dst = d.path().join("o.gz");
        for level in 1..=12 {
            compress(&src, body.len() as u64, &dst, level).unwrap();
            assert_eq!(gunzip(&std::fs::read(&dst).unwrap()), body, "level {level}");
        }
        // Exactly one block, empty, and a block with no newline at all.
        for n in [BLOCK, 0, BLOCK + 1] {
            let body: Vec<u8> = std::iter::repeat_n(b'x', n).collect();
            std::fs::write(&src, &body).unwrap();
            compress(&src, n as u64, &dst, 1).unwrap();
            assert_eq!(gunzip(&std::fs::read(&dst).unwrap()), body, "{n} bytes");
        }
    }

    #[test]
    fn classes_split_by_level_deterministically_with_their_own_metadata() {
        use crate::event::{Event, Tier};
        let d = tempfile::tempdir().unwrap();
        let src = d.path().join("s.ndjson");
        let levels = [Level::Debug, Level::Info, Level::Warn, Level::Error];
        let mut body = Vec::new();
        let mut want: std::collections::BTreeMap<u32, Vec<u8>> = Default::default();
        let classes = Classes::new([Some(1), Some(7), Some(7), Some(30)]).unwrap();
        // Enough lines for several members per class; a kind that spells
        // `"lvl":"error"` inside a string must not fool the split.
        for i in 0..40_000i64 {
            let mut e = Event::empty(Tier::System);
            e.ts = 1_000_000 + (i * 7919) % 100_000;
            e.lvl = levels[(i % 4) as usize];
            e.kind = "x\",\"lvl\":\"error".into();
            e.msg = format!("line {i} of the segment");
            let mut line = Vec::new();
            e.write_json(&mut line);
            body.extend_from_slice(&line);
            want.entry(classes.days(e.lvl))
                .or_default()
                .extend_from_slice(&line);
        }
        std::fs::write(&src, [&body[..], b"uncommitted"].concat()).unwrap();
        let meta = ObjectMeta {
            tier: "system".into(),
            instance_id: "h".into(),
            ..ObjectMeta::default()
        };
        let mut z = SegmentCompressor::new(1);
        let a = z
            .compress_classes(
                &src,
                body.len() as u64,
                &d.path().join("7.ndjson.gz"),
                &classes,
                &meta,
            )
            .unwrap();
        let bytes: Vec<Vec<u8>> = a.iter().map(|o| std::fs::read(&o.path).unwrap()).collect();
        assert_eq!(a.iter().map(|o| o.days).collect::<Vec<_>>(), [1, 7, 30]);
        assert!(
            a[1].path.ends_with("7.retain-7d.ndjson.gz"),
            "{:?}",
            a[1].path
        );
        for (o, gz) in a.iter().zip(&bytes) {
            let raw = gunzip(gz);
            assert!(raw == want[&o.days], "class {} differs", o.days);
            assert_eq!(Digest::of_file(&o.path).unwrap(), (o.len, o.digest));
            let evs: Vec<Event> = raw
                .split(|b| *b == b'\n')
                .filter(|l| !l.is_empty())
                .map(|l| Event::from_json(std::str::from_utf8(l).unwrap()).unwrap())
                .collect();
            assert_eq!(o.meta.lines, evs.len() as u64);
            assert_eq!(o.meta.first_ts, evs.iter().map(|e| e.ts).min().unwrap());
            assert_eq!(o.meta.last_ts, evs.iter().map(|e| e.ts).max().unwrap());
            assert_eq!(
                (o.meta.tier.as_str(), o.meta.instance_id.as_str()),
                ("system", "h")
            );
        }
        // Again (a re-upload after a crash): the same bytes.
        let b = z
            .compress_classes(
                &src,
                body.len() as u64,
                &d.path().join("8.ndjson.gz"),
                &classes,
                &meta,
            )
            .unwrap();
        for (o, gz) in b.iter().zip(&bytes) {
            assert!(&std::fs::read(&o.path).unwrap() == gz, "not deterministic");
        }
        // A class without events has no object.
        let only_info = Classes::new([Some(3), Some(3), Some(3), Some(3)]).unwrap();
        let c = z
            .compress_classes(
                &src,
                body.len() as u64,
                &d.path().join("9.ndjson.gz"),
                &only_info,
                &meta,
            )
            .unwrap();
        assert_eq!(c.len(), 1);
        assert!(gunzip(&std::fs::read(&c[0].path).unwrap()) == body);
    }

    #[test]
    fn a_segment_shorter_than_its_committed_length_is_an_error() {
        let d = tempfile::tempdir().unwrap();
        let src = d.path().join("s.ndjson");
        std::fs::write(&src, b"{}\n").unwrap();
        let e = compress(&src, 10, &d.path().join("o.gz"), 6).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::UnexpectedEof);
    }
}
