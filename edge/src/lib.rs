//! The edge appliance (`guardian-edge`): camera ingest, local detection, event clips, sealing
//! and the outbox towards the vm.
//!
//! Not built yet: the p2p (#3), archive (#4) and video (#5) issues fill this crate.
