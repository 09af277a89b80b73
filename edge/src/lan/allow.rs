//! Which source addresses may connect to the LAN listener (`[http] allow`): a list of
//! networks, checked on each accepted connection before any byte is read. Pure.

use std::net::IpAddr;

use crate::config::parse_network;

/// The networks allowed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Networks(Vec<(IpAddr, u8)>);

impl Networks {
    /// From `[http] allow` (each entry already checked by [`crate::config::EdgeConfig::load`];
    /// one that does not parse is an error here too).
    pub fn parse(list: &[String]) -> anyhow::Result<Networks> {
        list.iter()
            .map(|s| {
                parse_network(s)
                    .ok_or_else(|| anyhow::anyhow!("http.allow: {s:?} is not a network"))
            })
            .collect::<anyhow::Result<_>>()
            .map(Networks)
    }

    /// Whether `ip` is in one of the networks (an IPv4 address mapped into IPv6, as a
    /// dual-stack listener reports it, counts as the IPv4 address).
    pub fn allows(&self, ip: IpAddr) -> bool {
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
            v4 => v4,
        };
        self.0.iter().any(|&(net, len)| contains(net, len, ip))
    }
}

fn contains(net: IpAddr, len: u8, ip: IpAddr) -> bool {
    match (net, ip) {
        (IpAddr::V4(n), IpAddr::V4(a)) => {
            let mask = u32::MAX.checked_shl(32 - u32::from(len)).unwrap_or(0);
            u32::from(n) & mask == u32::from(a) & mask
        }
        (IpAddr::V6(n), IpAddr::V6(a)) => {
            let mask = u128::MAX.checked_shl(128 - u32::from(len)).unwrap_or(0);
            u128::from(n) & mask == u128::from(a) & mask
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::HttpConfig;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn the_default_allows_the_lan_and_nothing_else() {
        let n = Networks::parse(&HttpConfig::default().allow).unwrap();
        for ok in [
            "127.0.0.1",
            "127.9.9.9",
            "::1",
            "10.1.2.3",
            "172.16.0.1",
            "172.31.255.254",
            "192.168.1.20",
            "169.254.10.10",
            "fe80::1",
            "fd12:3456::7",
            "::ffff:192.168.1.20",
        ] {
            assert!(n.allows(ip(ok)), "{ok}");
        }
        for no in [
            "8.8.8.8",
            "172.32.0.1",
            "172.15.255.255",
            "192.169.0.1",
            "11.0.0.1",
            "2001:db8::1",
            "::ffff:8.8.8.8",
            "fec0::1",
            "0.0.0.0",
        ] {
            assert!(!n.allows(ip(no)), "{no}");
        }
    }

    #[test]
    fn networks_parse_with_their_prefix() {
        let n = Networks::parse(&["192.0.2.7".into(), "0.0.0.0/0".into()]).unwrap();
        assert!(n.allows(ip("203.0.113.1")), "/0 is everything IPv4");
        assert!(!n.allows(ip("2001:db8::1")), "but not IPv6");
        let one = Networks::parse(&["192.0.2.7".into()]).unwrap();
        assert!(one.allows(ip("192.0.2.7")) && !one.allows(ip("192.0.2.8")));
        let none = Networks::parse(&[]).unwrap();
        assert!(!none.allows(ip("127.0.0.1")));
        for bad in [
            "10.0.0.0/33",
            "fe80::/129",
            "10.0.0.0/",
            "10.0.0.0/x",
            "lan",
            "10.0.0/8",
        ] {
            assert!(Networks::parse(&[bad.into()]).is_err(), "{bad}");
        }
    }
}
