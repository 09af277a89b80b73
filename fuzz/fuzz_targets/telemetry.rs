//! Decoders of /guardian/telemetry/1 messages.
#![no_main]

use guardian_fuzz::*;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    round_trip::<telemetry::TelemetryReport>(data);
    round_trip::<telemetry::TelemetryAck>(data);
});
