//! The WireGuard overlay between an edge and its vm (`docs/overlay.md`).
//!
//! Layers, lowest first (no module imports one above it):
//! - [`keys`]: X25519 key pairs in WireGuard's base64 form.
//! - [`addressing`]: the tenant's overlay prefixes and each peer's addresses (pure).
//! - [`probe`]: the UDP probe and its answer (pure codec).
//! - [`path`]: when the edge uses UDP and when the stream (pure, takes `now`).
//! - [`quick`]: wg-quick configurations for the owner's devices (pure).
//! - [`relay`] (feature `device`): WireGuard packets framed over a byte stream.
//! - [`transport`] (feature `device`): the UDP transport handed to GotaTun, which sends to
//!   real addresses over UDP and to virtual ones over relay streams, and answers probes.
//! - [`device`] (feature `device`): the userspace device on a TUN, with the UAPI socket.

pub mod addressing;
pub mod keys;
pub mod path;
pub mod probe;
pub mod quick;

#[cfg(feature = "device")]
pub mod device;
#[cfg(feature = "device")]
pub mod relay;
#[cfg(feature = "device")]
pub mod transport;

pub use addressing::{Overlay4, OverlayPrefixes, PeerAddresses};
pub use keys::{KeyError, PublicKey, SecretKey};
