//! What cameras on the edge's LAN send it: ONVIF SOAP answers, WS-Discovery datagrams, RTSP
//! responses and SDP, H.264 sequence parameter sets (`protocols::lan`).
#![no_main]

use guardian_fuzz::*;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    lan_answers(data);
});
