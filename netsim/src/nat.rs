//! NAT profiles and the nftables rule sets that make a router namespace behave as each one.
//!
//! Mapping is done by netfilter's conntrack NAT (`masquerade`), which keeps the source port
//! when it is free: endpoint-independent mapping for a single host behind the router. Adding
//! `random` picks a new port for every new destination: endpoint-dependent (symmetric).
//! Filtering is conntrack's by default (only the exact remote address and port may answer:
//! address-and-port-dependent); full cone and restricted cone add a dynamic nftables map,
//! filled from outbound packets, that DNATs unsolicited inbound packets on a mapped port back
//! to the host (from anyone, or only from addresses the host has sent to). Those two rely on
//! the port being kept, which the self-test ([`crate::probe`]) checks.

use std::fmt;
use std::str::FromStr;

/// How a router translates and filters, by the RFC 4787 behaviours.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum NatProfile {
    /// No NAT: the host has a public address.
    None,
    /// Endpoint-independent mapping and filtering (UDP and TCP).
    FullCone,
    /// Endpoint-independent mapping, address-dependent filtering.
    RestrictedCone,
    /// Endpoint-independent mapping, address-and-port-dependent filtering (plain masquerade).
    PortRestrictedCone,
    /// Endpoint-dependent mapping (`masquerade random`), address-and-port-dependent filtering.
    Symmetric,
    /// A home NAT (port-restricted cone) behind a carrier NAT (port-restricted cone).
    Cgnat,
    /// Port-restricted cone that drops all forwarded UDP but DNS: TCP only.
    UdpBlocked,
}

impl NatProfile {
    /// Every profile, in table order.
    pub const ALL: [NatProfile; 7] = [
        NatProfile::None,
        NatProfile::FullCone,
        NatProfile::RestrictedCone,
        NatProfile::PortRestrictedCone,
        NatProfile::Symmetric,
        NatProfile::Cgnat,
        NatProfile::UdpBlocked,
    ];

    /// The short name used on the command line and in tables.
    pub fn name(self) -> &'static str {
        match self {
            NatProfile::None => "none",
            NatProfile::FullCone => "full-cone",
            NatProfile::RestrictedCone => "restricted",
            NatProfile::PortRestrictedCone => "port-restricted",
            NatProfile::Symmetric => "symmetric",
            NatProfile::Cgnat => "cgnat",
            NatProfile::UdpBlocked => "udp-blocked",
        }
    }

    /// Whether the mapping is endpoint-independent (the same public port for every
    /// destination), which is what hole punching needs on at least one side.
    pub fn endpoint_independent_mapping(self) -> bool {
        !matches!(self, NatProfile::Symmetric)
    }

    /// Whether UDP passes.
    pub fn udp(self) -> bool {
        !matches!(self, NatProfile::UdpBlocked)
    }
}

impl fmt::Display for NatProfile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for NatProfile {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        NatProfile::ALL
            .into_iter()
            .find(|p| p.name() == s)
            .ok_or_else(|| {
                let names: Vec<_> = NatProfile::ALL.iter().map(|p| p.name()).collect();
                format!("unknown NAT profile {s:?} (one of {})", names.join(", "))
            })
    }
}

/// What one NAT box does: the building block of a profile (a CGNAT is two boxes).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum NatBox {
    FullCone,
    RestrictedCone,
    PortRestrictedCone,
    Symmetric,
    UdpBlocked,
}

/// The nftables script for one router namespace: `wan` faces the outside, `lan` the hosts.
pub(crate) fn ruleset(kind: NatBox) -> String {
    let masquerade = if kind == NatBox::Symmetric {
        "masquerade random"
    } else {
        "masquerade"
    };
    // Every outbound packet records (protocol, port) -> host, or (protocol, port, remote
    // address) -> host, refreshing the entry (a filter chain sees every packet; nat chains
    // only the first of a connection); unsolicited inbound packets are DNATed through the map.
    // Replies never reach the nat chains: conntrack handles them.
    let (maps, learn, pre) = match kind {
        NatBox::FullCone => (
            "  map cone { type inet_proto . inet_service : ipv4_addr; flags dynamic,timeout; timeout 5m; }\n",
            "    iifname \"lan\" meta l4proto { tcp, udp } update @cone { meta l4proto . th sport : ip saddr }\n",
            "    iifname \"wan\" meta l4proto { tcp, udp } dnat ip to meta l4proto . th dport map @cone\n",
        ),
        NatBox::RestrictedCone => (
            "  map cone { type inet_proto . inet_service . ipv4_addr : ipv4_addr; flags dynamic,timeout; timeout 5m; }\n",
            "    iifname \"lan\" meta l4proto { tcp, udp } update @cone { meta l4proto . th sport . ip daddr : ip saddr }\n",
            "    iifname \"wan\" meta l4proto { tcp, udp } dnat ip to meta l4proto . th dport . ip saddr map @cone\n",
        ),
        _ => ("", "", ""),
    };
    let learn = if learn.is_empty() {
        String::new()
    } else {
        format!(
            "  chain learn {{\n    type filter hook prerouting priority mangle; policy accept;\n{learn}  }}\n"
        )
    };
    let forward = if kind == NatBox::UdpBlocked {
        UDP_BLOCK_CHAIN
    } else {
        ""
    };
    // Unsolicited packets to the router itself are dropped, not answered and not tracked:
    // an ICMP or RST answer would kill a simultaneous open, and a conntrack entry for
    // (peer, our public port) would make masquerade pick another port for the host's own
    // packet to that peer a moment later, breaking endpoint-independent mapping.
    let input = "  chain input {\n    type filter hook input priority filter; policy accept;\n    \
                 iifname \"wan\" ct state new drop\n  }\n";
    format!(
        "table ip gns_nat {{\n{maps}{learn}{input}  chain pre {{\n    type nat hook prerouting priority dstnat; policy accept;\n{pre}  }}\n  \
         chain post {{\n    type nat hook postrouting priority srcnat; policy accept;\n    oifname \"wan\" {masquerade}\n  }}\n{forward}}}\n"
    )
}

/// The nftables table of [`udp_block_ruleset`].
pub(crate) const UDP_BLOCK_TABLE: &str = "gns_udp_block";

/// A forward chain that drops every UDP packet but DNS. (Not `udp dport != 53 udp sport !=
/// 53 drop`: nft merges the two adjacent header matches into one compare of both ports, which
/// then drops DNS too, as long as only one of them is 53.)
const UDP_BLOCK_CHAIN: &str = "  chain forward {\n    type filter hook forward priority filter; policy accept;\n    \
     udp dport 53 accept\n    udp sport 53 accept\n    meta l4proto udp drop\n  }\n";

/// A table that drops every forwarded UDP packet but DNS, in a router namespace (added and
/// deleted at run time by [`crate::Lab::block_udp`] and [`crate::Lab::unblock_udp`]).
pub(crate) fn udp_block_ruleset() -> String {
    format!("table ip {UDP_BLOCK_TABLE} {{\n{UDP_BLOCK_CHAIN}}}\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for p in NatProfile::ALL {
            assert_eq!(p.name().parse::<NatProfile>().unwrap(), p);
        }
        assert!("cone".parse::<NatProfile>().is_err());
    }

    #[test]
    fn symmetric_masquerades_random() {
        assert!(ruleset(NatBox::Symmetric).contains("masquerade random"));
        assert!(!ruleset(NatBox::PortRestrictedCone).contains("random"));
        assert!(ruleset(NatBox::UdpBlocked).contains("meta l4proto udp drop"));
        assert!(ruleset(NatBox::FullCone).contains("map @cone"));
        assert!(udp_block_ruleset().contains("udp sport 53 accept"));
        assert!(!ruleset(NatBox::PortRestrictedCone).contains("udp drop"));
    }
}
