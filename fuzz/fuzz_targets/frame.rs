//! The length-prefixed frame reader, on a stream of arbitrary bytes.
#![no_main]

use guardian_fuzz::*;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    frames(data);
});
