//! Fuzz the redactor: arbitrary input must not panic, must keep one output
//! line per input line, and must be stable under a second pass; a private
//! key cut and prefixed by fuzzer-chosen bytes must never leak.
//!
//! The checks live in `logship::redact::selfcheck` so that a proptest runs
//! the same code on stable (`tests/redact_props.rs`).
#![no_main]

use libfuzzer_sys::fuzz_target;
use logship::redact::selfcheck::{check_arbitrary, check_pem};

const KINDS: [&str; 4] = [
    "RSA PRIVATE KEY",
    "PRIVATE KEY",
    "OPENSSH PRIVATE KEY",
    "PGP PRIVATE KEY BLOCK",
];

fuzz_target!(|data: &[u8]| {
    check_arbitrary(data);
    if data.len() >= 4 {
        let cuts: Vec<usize> = data[..3].iter().map(|&b| b as usize).collect();
        let kind = KINDS[data[3] as usize % KINDS.len()];
        let prefix = String::from_utf8_lossy(&data[4..data.len().min(44)]);
        check_pem(&prefix, &cuts, kind, data[3] & 0x80 != 0);
    }
});
