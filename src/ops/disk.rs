//! When `data_dir` cannot take writes: a full filesystem, an exhausted
//! quota, a read-only mount.
//!
//! These are expected conditions, not crashes: a small `emptyDir` fills up,
//! an operator remounts a disk read-only to repair it. The pipeline pauses
//! reading (the source files are the buffer), rolls its state back to the
//! last checkpoint, says so in metrics and `/readyz`, and resumes by itself
//! once a probe write succeeds. Every other write failure stays crash-only.
//!
//! This module owns the classification ([`classify`]), the free-space probe
//! ([`free_bytes`]) and the two metrics of the condition; the pipeline owns
//! the state machine (`pipeline::disk`).

use std::ffi::CString;
use std::fmt;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use super::metrics::{metrics, ReasonLabel};

/// Why `data_dir` does not take writes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DiskProblem {
    /// `ENOSPC` or `EDQUOT`, or less free space than the agent keeps in reserve.
    NoSpace,
    /// `EROFS`: the filesystem is mounted read-only.
    ReadOnly,
}

impl DiskProblem {
    /// Every value, for metrics that must show each label from the start.
    pub const ALL: [DiskProblem; 2] = [DiskProblem::NoSpace, DiskProblem::ReadOnly];

    /// The `reason` label.
    pub fn reason(self) -> &'static str {
        match self {
            DiskProblem::NoSpace => "no_space",
            DiskProblem::ReadOnly => "read_only",
        }
    }

    /// What to tell an operator.
    pub fn hint(self) -> &'static str {
        match self {
            DiskProblem::NoSpace => "free space on the data_dir filesystem (or lower segments.max_disk below its size); reading resumes by itself",
            DiskProblem::ReadOnly => "remount the data_dir filesystem read-write; reading resumes by itself",
        }
    }
}

impl fmt::Display for DiskProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            DiskProblem::NoSpace => "no space left on the data_dir filesystem",
            DiskProblem::ReadOnly => "the data_dir filesystem is read-only",
        })
    }
}

/// Whether `e` is a condition to wait out rather than crash on.
pub fn classify(e: &io::Error) -> Option<DiskProblem> {
    match e.raw_os_error()? {
        libc::ENOSPC | libc::EDQUOT => Some(DiskProblem::NoSpace),
        libc::EROFS => Some(DiskProblem::ReadOnly),
        _ => None,
    }
}

/// [`classify`] of the first I/O error in an error's chain.
pub fn classify_chain(e: &anyhow::Error) -> Option<DiskProblem> {
    e.chain()
        .find_map(|c| c.downcast_ref::<io::Error>())
        .and_then(classify)
}

/// Bytes an unprivileged writer may still use on the filesystem of `path`.
pub fn free_bytes(path: &Path) -> io::Result<u64> {
    let c = CString::new(path.as_os_str().as_bytes()).map_err(io::Error::other)?;
    // SAFETY: statvfs writes into the zeroed struct we pass and reads the
    // NUL-terminated path; both outlive the call.
    let mut st: libc::statvfs = unsafe { std::mem::zeroed() };
    let rc = unsafe { libc::statvfs(c.as_ptr(), &mut st) };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok((st.f_bavail as u64).saturating_mul(st.f_frsize as u64))
}

/// Publish the condition: the gauge of `problem` 1 (all others 0), and one
/// more pause counted when reading stops.
pub fn set_metrics(problem: Option<DiskProblem>) {
    let m = metrics();
    for p in DiskProblem::ALL {
        let label = ReasonLabel {
            reason: p.reason().to_string(),
        };
        let on = Some(p) == problem;
        let gauge = m.data_dir_blocked.get_or_create(&label);
        if on && gauge.get() == 0 {
            m.data_dir_pauses.get_or_create(&label).inc();
        }
        gauge.set(i64::from(on));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classifies_space_quota_and_read_only() {
        let e = |n| io::Error::from_raw_os_error(n);
        assert_eq!(classify(&e(libc::ENOSPC)), Some(DiskProblem::NoSpace));
        assert_eq!(classify(&e(libc::EDQUOT)), Some(DiskProblem::NoSpace));
        assert_eq!(classify(&e(libc::EROFS)), Some(DiskProblem::ReadOnly));
        assert_eq!(classify(&e(libc::EIO)), None);
        assert_eq!(classify(&io::Error::other("x")), None);
        let chained = anyhow::Error::new(e(libc::ENOSPC)).context("writing a segment");
        assert_eq!(classify_chain(&chained), Some(DiskProblem::NoSpace));
    }

    #[test]
    fn free_space_of_a_real_directory() {
        let d = tempfile::tempdir().unwrap();
        assert!(free_bytes(d.path()).is_ok());
        assert!(free_bytes(&d.path().join("missing")).is_err());
    }
}
