//! Fuzz config loading: interpolation, TOML parsing and validation.
//!
//! Arbitrary text (and an arbitrary value for every `${VAR}`) must give a
//! config or errors, never a panic, and every error must point inside the
//! file as written (line and column within its bounds), because operators
//! jump to `file:line:col`.
#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // The first line is the value every variable expands to; the rest is
    // the file.
    let text = String::from_utf8_lossy(data);
    let (value, file) = text.split_once('\n').unwrap_or(("", &text));
    let value = value.to_string();
    let env = move |_: &str| Some(value.clone());
    let lines = file.lines().count().max(1);
    if let Err(errors) = logship::config::load_str(Path::new("fuzz.toml"), file.to_string(), &env) {
        for e in &errors.0 {
            assert!(
                e.line <= lines + 1,
                "line {} of {lines}: {}",
                e.line,
                e.message
            );
            assert!(!e.message.is_empty());
        }
    }
});
