//! Opening arbitrary bytes as a sealed object: errors, never a panic or a hang.
#![no_main]

use guardian_fuzz::*;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    open(data);
});
