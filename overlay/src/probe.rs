//! The UDP probe the edge sends to the vm's WireGuard port, on the tunnel's own socket (so
//! through the same NAT mapping), and the vm's answer. Neither reaches WireGuard: its
//! messages start with a type 1 to 4 and three zero bytes, these with 0xF7 or 0xF8. Pure.

/// A probe's length.
pub const LEN: usize = 17;
const ASK: u8 = 0xF7;
const ANSWER: u8 = 0xF8;
const MAGIC: &[u8; 8] = b"GDNPROBE";

/// What a datagram is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Probe {
    /// A probe to answer, with its nonce.
    Ask(u64),
    /// An answer to our probe.
    Answer(u64),
}

/// Encodes a probe or an answer.
pub fn encode(p: Probe) -> [u8; LEN] {
    let (kind, nonce) = match p {
        Probe::Ask(n) => (ASK, n),
        Probe::Answer(n) => (ANSWER, n),
    };
    let mut b = [0u8; LEN];
    b[0] = kind;
    b[1..9].copy_from_slice(MAGIC);
    b[9..].copy_from_slice(&nonce.to_be_bytes());
    b
}

/// A probe or answer, or `None` for anything else (WireGuard's packets).
pub fn decode(b: &[u8]) -> Option<Probe> {
    if b.len() != LEN || &b[1..9] != MAGIC {
        return None;
    }
    let nonce = u64::from_be_bytes(b[9..].try_into().ok()?);
    match b[0] {
        ASK => Some(Probe::Ask(nonce)),
        ANSWER => Some(Probe::Answer(nonce)),
        _ => None,
    }
}

/// Whether the first byte can start a probe (a cheap test before [`decode`]).
pub fn maybe(b: &[u8]) -> bool {
    b.len() == LEN && (b[0] == ASK || b[0] == ANSWER)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_wireguard_is_not_a_probe() {
        for p in [Probe::Ask(7), Probe::Answer(u64::MAX)] {
            let b = encode(p);
            assert!(maybe(&b));
            assert_eq!(decode(&b), Some(p));
        }
        // A WireGuard handshake initiation (type 1), a keepalive-sized data packet (type 4).
        let mut init = vec![1u8, 0, 0, 0];
        init.resize(148, 0);
        assert_eq!(decode(&init), None);
        let mut data = vec![4u8, 0, 0, 0];
        data.resize(LEN, 0);
        assert!(!maybe(&data));
        assert_eq!(decode(&data), None);
        let mut wrong = encode(Probe::Ask(1));
        wrong[3] = b'X';
        assert_eq!(decode(&wrong), None);
    }
}
