//! Decoders of /guardian/clips/1 messages, and the playback token inside.
#![no_main]

use guardian_fuzz::*;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    round_trip::<clips::ClipRequest>(data);
    round_trip::<clips::ClipResponse>(data);
    if let Ok(r) = codec::decode::<clips::ClipRequest>(data) {
        let _ = r.token.peek();
    }
});
