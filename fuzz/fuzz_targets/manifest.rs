//! The manifest parser and verifier.
#![no_main]

use guardian_fuzz::*;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    manifest(data);
});
