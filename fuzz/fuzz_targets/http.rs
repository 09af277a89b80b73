//! The HTTP API's input parsers: the one `Range` parser (and its resolution against a size),
//! the query strings of the listing and clip endpoints, the playback token in `?token=`,
//! and the path segments.
#![no_main]

use guardian_fuzz::*;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    http_inputs(data);
});
