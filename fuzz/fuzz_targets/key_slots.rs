//! The owner's signed key-slot list: its body decoder, its validation and the edge's
//! acceptance check, for any bytes (a signature over fuzzed bytes never verifies, so the
//! body is read with `peek`, as a vm showing the list does).
#![no_main]

use guardian_fuzz::*;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    key_slot_list(data);
});
