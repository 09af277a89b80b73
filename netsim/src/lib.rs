//! The network simulation harness: Linux network namespaces joined by veth pairs, NAT
//! routers in nftables, impaired and cut links, and the project's own binaries running inside.
//!
//! - [`lab`]: namespaces, hosts, routers, links; the drop guard and the sweep of leftovers.
//! - [`nat`]: the NAT profiles and their nftables rule sets.
//! - [`impair`]: delay, jitter, loss and rate behind one call (netem, or its emulation).
//! - [`delay`]: the NFQUEUE delay line used where the kernel has no netem.
//! - [`probe`]: the NAT self-test.
//! - [`process`]: processes started in a namespace, with their output in files.
//! - [`guardian`]: the project's binaries (vm, edge) and the vm's API in a lab.
//! - [`peer`]: a libp2p probe peer on `guardian-node` that reports relayed and direct
//!   connections as JSON lines (`netsim peer`).
//! - [`playback`]: the owner's `guardian play` from behind one NAT of a clip on an edge behind
//!   another, the camera stand-in, and the streaming benchmark against iperf3.
//! - [`scenario`]: the scenarios (enroll behind each NAT, outages, impaired uplink).
//! - [`matrix`]: the relay + DCUtR matrix over NAT profiles.
//! - [`alerts`]: `make bench-alerts`, from the detector's hit to the webhook and MQTT.
//! - [`overlay`]: the WireGuard overlay driven as a user would (the vm's API, curl at overlay
//!   addresses, `guardian wg device`, wg-quick with wireguard-go) and `make bench-overlay`.
//! - [`cmd`], [`netns`]: running the system tools and entering namespaces.
//!
//! Everything needs root. Addresses are those of namespaces the lab made: 198.18.0.0/15 for
//! the internet, 100.64.0.0/10 between a carrier NAT and a home router, 10.0.0.0/8 for LANs.

pub mod alerts;
pub mod cameras;
pub mod cmd;
pub mod delay;
pub mod error;
pub mod guardian;
pub mod impair;
pub mod lab;
pub mod matrix;
pub mod nat;
pub mod netns;
pub mod overlay;
pub mod peer;
pub mod playback;
pub mod probe;
pub mod process;
pub mod scenario;

pub use error::{Error, Result};
pub use impair::Impairment;
pub use lab::{Dir, End, Host, Lab, Link, sweep};
pub use nat::NatProfile;
pub use process::Proc;

/// Whether the harness can run here (root); tests skip with a message when it cannot.
pub fn can_run() -> bool {
    cmd::is_root()
}

/// For tests: [`can_run`], and when it cannot, a `SKIPPED` line on stderr, written straight
/// there because the test harness captures `eprintln!` of passing tests.
pub fn can_run_or_say_skipped() -> bool {
    if can_run() {
        return true;
    }
    use std::io::Write;
    let _ = writeln!(
        std::io::stderr(),
        "SKIPPED: netsim tests need root (network namespaces, nftables, NFQUEUE)"
    );
    false
}
