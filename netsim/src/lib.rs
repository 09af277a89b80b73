//! The network simulation harness: Linux network namespaces, NAT routers in nftables,
//! impaired links, and scenarios that run the project's binaries inside them.
//!
//! Not built yet: the netsim issue (#6) fills this crate.
