//! Fuzz the checkpoint decoder: any bytes give a checkpoint or an error,
//! never a panic, and what decodes re-encodes to the same checkpoint (so a
//! restart after a restart resumes at the same place).
#![no_main]

use libfuzzer_sys::fuzz_target;
use logship::pipeline::checkpoint::{decode, encode};

fuzz_target!(|data: &[u8]| {
    if let Ok(cp) = decode(data) {
        let mut out = Vec::new();
        encode(&cp, &mut out).expect("a decoded checkpoint encodes");
        let again = decode(&out).expect("an encoded checkpoint decodes");
        assert_eq!(cp, again);
    }
});
