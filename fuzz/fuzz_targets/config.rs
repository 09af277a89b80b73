//! Decoders of /guardian/config/1 and /guardian/config-change/1 messages, and the camera
//! configuration's check and URL helpers on what decodes; the discovery, scan and snapshot
//! messages (/guardian/discovery/1, /guardian/scan/1, /guardian/snapshot/1).
#![no_main]

use guardian_fuzz::*;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    round_trip::<config::ConfigPush>(data);
    round_trip::<config::ConfigAck>(data);
    round_trip::<config::CameraChanges>(data);
    round_trip::<config::CameraChangesAck>(data);
    camera_checks(data);
    round_trip::<discovery::DiscoveryReport>(data);
    round_trip::<discovery::DiscoveryAck>(data);
    round_trip::<discovery::ScanRequest>(data);
    round_trip::<discovery::ScanAnswer>(data);
    round_trip::<discovery::SnapshotRequest>(data);
    round_trip::<discovery::SnapshotAnswer>(data);
});
