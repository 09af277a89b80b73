//! The shared libp2p node of Private AI Guardian: one builder for the edge, the vm and the
//! owner's client (transports, behaviours, relay, hole punching, gating, reconnects).
//!
//! Not built yet: the p2p issue (#3) fills this crate. It holds no networking code today.
