//! The overlay's addresses: a ULA /64 and a private IPv4 range per vm (one vm per tenant);
//! the vm is host 1, the peer with index `n` (from 1, given when it is first registered) is
//! host `n + 1` in both. Pure.

use std::net::{Ipv4Addr, Ipv6Addr};

use sha2::{Digest, Sha256};

/// The default IPv4 range.
pub const DEFAULT_RANGE_V4: &str = "10.77.0.0/16";

/// A prefix or range that cannot be used.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum AddressError {
    /// Not `address/length`, or the wrong family.
    #[error("{0:?} is not an {1} network in address/length form")]
    Malformed(String, &'static str),
    /// The IPv6 prefix is not a /64 in fc00::/7.
    #[error("the overlay's IPv6 prefix must be a /64 in fc00::/7 (unique local), not {0}")]
    NotUla(String),
    /// The IPv4 range is not private or is too small.
    #[error("the overlay's IPv4 range must be private (RFC 1918) and /8 to /29, not {0}")]
    BadRange(String),
    /// No address left for this index.
    #[error("the overlay's IPv4 range {0} has no host for peer {1}")]
    Full(String, u32),
}

/// An IPv4 network.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Overlay4 {
    /// The network address.
    pub network: Ipv4Addr,
    /// The prefix length.
    pub len: u8,
}

/// One peer's pair of overlay addresses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PeerAddresses {
    /// In the ULA /64.
    pub v6: Ipv6Addr,
    /// In the IPv4 range.
    pub v4: Ipv4Addr,
}

impl PeerAddresses {
    /// Both as host routes (`/128`, `/32`): a peer's allowed IPs at the vm.
    pub fn host_routes(&self) -> Vec<String> {
        vec![format!("{}/128", self.v6), format!("{}/32", self.v4)]
    }
}

/// The overlay of one vm.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OverlayPrefixes {
    /// The /64's network address.
    pub v6: Ipv6Addr,
    /// The IPv4 range.
    pub v4: Overlay4,
}

impl OverlayPrefixes {
    /// From the settings: `prefix_v6` empty means the tenant's derived ULA /64.
    pub fn new(tenant_id: &str, prefix_v6: &str, range_v4: &str) -> Result<Self, AddressError> {
        let v6 = if prefix_v6.trim().is_empty() {
            derived_ula(tenant_id)
        } else {
            let (a, len) = split(prefix_v6, "IPv6")?;
            let a: Ipv6Addr = a
                .parse()
                .map_err(|_| AddressError::Malformed(prefix_v6.into(), "IPv6"))?;
            if len != 64 || (a.segments()[0] & 0xfe00) != 0xfc00 {
                return Err(AddressError::NotUla(prefix_v6.into()));
            }
            let s = a.segments();
            Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0)
        };
        let (a, len) = split(range_v4, "IPv4")?;
        let a: Ipv4Addr = a
            .parse()
            .map_err(|_| AddressError::Malformed(range_v4.into(), "IPv4"))?;
        if !a.is_private() || !(8..=29).contains(&len) {
            return Err(AddressError::BadRange(range_v4.into()));
        }
        let mask = u32::MAX << (32 - u32::from(len));
        let network = Ipv4Addr::from(u32::from(a) & mask);
        Ok(OverlayPrefixes {
            v6,
            v4: Overlay4 { network, len },
        })
    }

    /// The vm's addresses (host 1).
    pub fn vm(&self) -> PeerAddresses {
        self.host(1).expect("host 1 fits every range")
    }

    /// The addresses of the peer with `index` (≥ 1).
    pub fn peer(&self, index: u32) -> Result<PeerAddresses, AddressError> {
        if index == 0 {
            return Err(AddressError::Full(self.v4_cidr(), index));
        }
        self.host(index + 1)
            .ok_or_else(|| AddressError::Full(self.v4_cidr(), index))
    }

    fn host(&self, n: u32) -> Option<PeerAddresses> {
        let size = 1u64 << (32 - u32::from(self.v4.len));
        // Not the network address, not the broadcast address.
        if u64::from(n) == 0 || u64::from(n) >= size - 1 {
            return None;
        }
        let s = self.v6.segments();
        Some(PeerAddresses {
            v6: Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, (n >> 16) as u16, n as u16),
            v4: Ipv4Addr::from(u32::from(self.v4.network) + n),
        })
    }

    /// `fdxx:xxxx:xxxx:0::/64`.
    pub fn v6_cidr(&self) -> String {
        format!("{}/64", self.v6)
    }

    /// `10.77.0.0/16`.
    pub fn v4_cidr(&self) -> String {
        format!("{}/{}", self.v4.network, self.v4.len)
    }

    /// Both prefixes: what a peer routes into the tunnel.
    pub fn cidrs(&self) -> Vec<String> {
        vec![self.v6_cidr(), self.v4_cidr()]
    }
}

/// `fd` followed by 40 bits of SHA-256(tenant id): RFC 4193's global id, reproducible.
pub fn derived_ula(tenant_id: &str) -> Ipv6Addr {
    let h = Sha256::digest(format!("guardian overlay {tenant_id}").as_bytes());
    Ipv6Addr::new(
        0xfd00 | u16::from(h[0]),
        u16::from_be_bytes([h[1], h[2]]),
        u16::from_be_bytes([h[3], h[4]]),
        0,
        0,
        0,
        0,
        0,
    )
}

fn split<'a>(s: &'a str, family: &'static str) -> Result<(&'a str, u8), AddressError> {
    let (a, len) = s
        .trim()
        .split_once('/')
        .ok_or_else(|| AddressError::Malformed(s.into(), family))?;
    let len = len
        .parse()
        .map_err(|_| AddressError::Malformed(s.into(), family))?;
    Ok((a, len))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_derived_prefix_is_ula_and_differs_by_tenant() {
        let a = OverlayPrefixes::new("t-one", "", DEFAULT_RANGE_V4).unwrap();
        let b = OverlayPrefixes::new("t-two", "", DEFAULT_RANGE_V4).unwrap();
        assert_eq!(a.v6.segments()[0] & 0xff00, 0xfd00);
        assert_ne!(a.v6, b.v6);
        assert_eq!(
            a,
            OverlayPrefixes::new("t-one", "", DEFAULT_RANGE_V4).unwrap()
        );
        assert!(a.v6_cidr().ends_with("::/64"), "{}", a.v6_cidr());
    }

    #[test]
    fn hosts_are_numbered_from_the_vm() {
        let p = OverlayPrefixes::new("t", "fd12:3456:789a::/64", "10.77.0.0/16").unwrap();
        assert_eq!(
            p.vm(),
            PeerAddresses {
                v6: "fd12:3456:789a::1".parse().unwrap(),
                v4: "10.77.0.1".parse().unwrap()
            }
        );
        let third = p.peer(3).unwrap();
        assert_eq!(third.v6, "fd12:3456:789a::4".parse::<Ipv6Addr>().unwrap());
        assert_eq!(third.v4, "10.77.0.4".parse::<Ipv4Addr>().unwrap());
        assert_eq!(
            p.peer(300).unwrap().v4,
            "10.77.1.45".parse::<Ipv4Addr>().unwrap()
        );
        assert_eq!(
            third.host_routes(),
            vec!["fd12:3456:789a::4/128", "10.77.0.4/32"]
        );
        assert_eq!(p.cidrs(), vec!["fd12:3456:789a::/64", "10.77.0.0/16"]);
    }

    #[test]
    fn a_small_range_fills_up() {
        let p = OverlayPrefixes::new("t", "", "192.168.50.0/29").unwrap();
        // 8 addresses: network, vm, 5 peers, broadcast.
        assert!(p.peer(5).is_ok());
        assert!(matches!(p.peer(6), Err(AddressError::Full(..))));
        assert!(matches!(p.peer(0), Err(AddressError::Full(..))));
    }

    #[test]
    fn bad_settings_are_refused() {
        assert!(matches!(
            OverlayPrefixes::new("t", "2001:db8::/64", DEFAULT_RANGE_V4),
            Err(AddressError::NotUla(_))
        ));
        assert!(matches!(
            OverlayPrefixes::new("t", "fd00::/48", DEFAULT_RANGE_V4),
            Err(AddressError::NotUla(_))
        ));
        assert!(matches!(
            OverlayPrefixes::new("t", "", "8.8.8.0/24"),
            Err(AddressError::BadRange(_))
        ));
        assert!(matches!(
            OverlayPrefixes::new("t", "", "10.0.0.0"),
            Err(AddressError::Malformed(..))
        ));
        // The host part of the range is dropped.
        let p = OverlayPrefixes::new("t", "", "10.77.3.9/16").unwrap();
        assert_eq!(p.v4_cidr(), "10.77.0.0/16");
    }
}
