//! Which hosts the RTSP probe may knock on (pure): only inside the subnets of the edge's own
//! interfaces, only private IPv4 (RFC 1918), never loopback, link-local or a public network,
//! at most `max_hosts` per subnet (a larger one is probed around the edge's own address),
//! never the edge itself, the network or the broadcast address.

use std::net::Ipv4Addr;

/// An interface address with its prefix length.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IfaceNet {
    /// The edge's address on it.
    pub addr: Ipv4Addr,
    /// Prefix length.
    pub prefix: u8,
}

impl IfaceNet {
    fn mask(prefix: u8) -> u32 {
        if prefix == 0 {
            0
        } else {
            u32::MAX << (32 - u32::from(prefix.min(32)))
        }
    }

    /// The network, as `a.b.c.d/n`.
    pub fn network(&self) -> String {
        let n = u32::from(self.addr) & Self::mask(self.prefix);
        format!("{}/{}", Ipv4Addr::from(n), self.prefix)
    }

    fn contains(&self, ip: Ipv4Addr) -> bool {
        let m = Self::mask(self.prefix);
        u32::from(ip) & m == u32::from(self.addr) & m
    }
}

/// Whether the probe may look at a subnet of this interface.
pub fn eligible(n: &IfaceNet) -> bool {
    n.addr.is_private() && n.prefix >= 16 && n.prefix <= 30
}

/// Parses `a.b.c.d/n`.
pub fn parse_cidr(s: &str) -> Option<IfaceNet> {
    let (a, p) = s.trim().split_once('/')?;
    let prefix: u8 = p.parse().ok().filter(|p| *p <= 32)?;
    Some(IfaceNet {
        addr: a.parse().ok()?,
        prefix,
    })
}

/// The subnets to probe: each eligible interface's, or of `wanted` (config) only those that
/// lie inside one (the others are returned as refusals, with the reason).
pub fn targets(ifaces: &[IfaceNet], wanted: &[String]) -> (Vec<IfaceNet>, Vec<String>) {
    let own: Vec<IfaceNet> = ifaces.iter().copied().filter(eligible).collect();
    if wanted.is_empty() {
        return (own, Vec::new());
    }
    let mut out = Vec::new();
    let mut refused = Vec::new();
    for w in wanted {
        match parse_cidr(w) {
            None => refused.push(format!("discovery.subnets: {w:?} is not a.b.c.d/n")),
            Some(n) => match own
                .iter()
                .find(|o| o.prefix <= n.prefix && o.contains(n.addr))
            {
                // Probed as the edge's own address sees it, narrowed to the subnet asked.
                Some(o) => out.push(IfaceNet {
                    addr: if n.contains(o.addr) { o.addr } else { n.addr },
                    prefix: n.prefix,
                }),
                None => refused.push(format!(
                    "discovery.subnets: {w} is not inside a private subnet of this edge's \
                     interfaces; not probed"
                )),
            },
        }
    }
    (out, refused)
}

/// The hosts of `n` to probe, at most `max_hosts`, nearest the edge's own address first
/// when the subnet is larger.
pub fn hosts(n: &IfaceNet, max_hosts: u32) -> Vec<Ipv4Addr> {
    let m = IfaceNet::mask(n.prefix);
    let base = u32::from(n.addr) & m;
    let size = (!m).wrapping_add(1) as u64; // addresses in the subnet
    if size < 4 {
        return Vec::new();
    }
    let first = base + 1;
    let last = base + (size as u32) - 2;
    let own = u32::from(n.addr);
    let usable = u64::from(last - first + 1);
    let take = u64::from(max_hosts).min(usable) as u32;
    // A window of `take` addresses around our own, inside [first, last].
    let start = own
        .saturating_sub(take / 2)
        .clamp(first, last + 1 - take.max(1));
    (start..start + take)
        .filter(|&ip| ip != own)
        .map(Ipv4Addr::from)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn net(s: &str) -> IfaceNet {
        parse_cidr(s).unwrap()
    }

    #[test]
    fn only_private_subnets_of_our_own_interfaces() {
        let ifaces = [
            net("10.1.2.2/24"),
            net("127.0.0.1/8"),
            net("198.18.0.2/24"),
            net("192.168.1.5/16"),
        ];
        let (t, refused) = targets(&ifaces, &[]);
        assert_eq!(t, [net("10.1.2.2/24"), net("192.168.1.5/16")]);
        assert!(refused.is_empty());
        let (t, refused) = targets(
            &ifaces,
            &[
                "192.168.7.0/24".into(),
                "10.9.0.0/24".into(),
                "8.8.8.0/24".into(),
                "x".into(),
            ],
        );
        assert_eq!(t, [net("192.168.7.0/24")]);
        assert_eq!(refused.len(), 3);
        assert_eq!(net("10.1.2.2/24").network(), "10.1.2.0/24");
    }

    #[test]
    fn hosts_skip_ourselves_and_stay_bounded() {
        let h = hosts(&net("10.1.2.2/24"), 256);
        assert_eq!(h.len(), 253, "254 usable, less our own");
        assert_eq!(h[0], Ipv4Addr::new(10, 1, 2, 1));
        assert_eq!(*h.last().unwrap(), Ipv4Addr::new(10, 1, 2, 254));
        assert!(!h.contains(&Ipv4Addr::new(10, 1, 2, 2)));
        let big = hosts(&net("192.168.1.5/16"), 256);
        assert!(big.len() <= 256 && big.len() >= 255);
        assert!(big.contains(&Ipv4Addr::new(192, 168, 1, 4)));
        assert!(big.iter().all(|ip| ip.octets()[0..2] == [192, 168]));
        assert_eq!(
            hosts(&net("10.0.0.1/30"), 256),
            [Ipv4Addr::new(10, 0, 0, 2)]
        );
        assert!(hosts(&net("10.0.0.1/31"), 256).is_empty());
        let edge = hosts(&net("10.0.0.254/24"), 10);
        assert!(
            edge.iter()
                .all(|ip| ip.octets()[3] >= 245 && ip.octets()[3] <= 254)
        );
    }
}
