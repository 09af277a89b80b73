//! Decoders of /guardian/events/1 messages.
#![no_main]

use guardian_fuzz::*;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    round_trip::<events::EventBatch>(data);
    round_trip::<events::EventAck>(data);
});
