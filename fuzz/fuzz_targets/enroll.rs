//! Decoders of /guardian/enroll/1 messages, and the enrollment token inside.
#![no_main]

use guardian_fuzz::*;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    round_trip::<enroll::EnrollRequest>(data);
    round_trip::<enroll::EnrollResponse>(data);
    if let Ok(r) = codec::decode::<enroll::EnrollRequest>(data) {
        let _ = r.token.peek();
    }
});
