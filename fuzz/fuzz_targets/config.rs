//! Decoders of /guardian/config/1 messages.
#![no_main]

use guardian_fuzz::*;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    round_trip::<config::ConfigPush>(data);
    round_trip::<config::ConfigAck>(data);
});
