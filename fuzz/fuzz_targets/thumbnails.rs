//! Decoders of /guardian/thumbnails/1 messages, and the manifest an upload carries.
#![no_main]

use guardian_fuzz::*;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    round_trip::<thumbnails::ThumbnailUpload>(data);
    round_trip::<thumbnails::ThumbnailAck>(data);
    if let Ok(up) = codec::decode::<thumbnails::ThumbnailUpload>(data) {
        let _ = guardian_protocols::Manifest::from_json(&up.manifest_json);
    }
});
