//! The tenant's private cloud node (`guardian-vm`): enrollment, relay, events, telemetry,
//! quotas and the S3 archive indexed by CID.
//!
//! Not built yet: the p2p (#3) and archive (#4) issues fill this crate.
