//! Decoders of /guardian/archive/1 messages, and the manifest an offer carries.
#![no_main]

use guardian_fuzz::*;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    round_trip::<archive::ArchiveOffer>(data);
    round_trip::<archive::ArchiveDecision>(data);
    round_trip::<archive::ObjectHeader>(data);
    round_trip::<archive::ArchiveResult>(data);
    if let Ok(offer) = codec::decode::<archive::ArchiveOffer>(data) {
        let _ = guardian_protocols::Manifest::from_json(&offer.manifest_json);
    }
});
