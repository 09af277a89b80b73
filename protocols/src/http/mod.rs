//! The pure input parsers of the owner's HTTP API, shared by every server of it (the vm's,
//! and the edge's on the LAN): one `Range` parser for every ranged endpoint ([`range`]) and
//! one query parser for the listing endpoints ([`query`]), and the session cookie
//! ([`session`]). Each takes untrusted text and
//! returns a bounded value or a typed refusal; both are fuzzed.

pub mod query;
pub mod range;
pub mod session;
