//! Decoders of /guardian/wg/1 messages.
#![no_main]

use guardian_fuzz::*;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    round_trip::<wg::WgOffer>(data);
    round_trip::<wg::WgAnswer>(data);
});
