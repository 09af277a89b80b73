//! The HTTP API's input parsers: the one `Range` parser (and its resolution against a size)
//! and the query strings of the listing and clip endpoints.
#![no_main]

use guardian_fuzz::*;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    http_inputs(data);
});
