//! Where webhooks may be sent. An admin names the URL, but the request leaves from inside the shop's
//! network: left unchecked, an endpoint at `http://169.254.169.254/` or `http://10.0.0.7:5432/`
//! would make coupond probe the cloud's metadata service or the shop's own hosts for whoever holds
//! an admin token (server-side request forgery). So only public addresses are reached, plus the
//! internal networks the operator names (a CRM inside the shop's network, a test receiver on
//! loopback). The check is made on the address actually connected to, after name resolution, so a
//! public-looking name that resolves to an internal address is refused too.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use ipnet::{IpNet, Ipv4Net, Ipv6Net};

/// Addresses that are not on the public internet (IANA's special-purpose registries): this host,
/// private and shared networks, link-local (where clouds serve instance metadata), documentation
/// and benchmarking ranges, multicast and reserved space.
const INTERNAL_V4: &[Ipv4Net] = &[
    v4(0, 0, 0, 0, 8),
    v4(10, 0, 0, 0, 8),
    v4(100, 64, 0, 0, 10),
    v4(127, 0, 0, 0, 8),
    v4(169, 254, 0, 0, 16),
    v4(172, 16, 0, 0, 12),
    v4(192, 0, 0, 0, 24),
    v4(192, 0, 2, 0, 24),
    v4(192, 88, 99, 0, 24),
    v4(192, 168, 0, 0, 16),
    v4(198, 18, 0, 0, 15),
    v4(198, 51, 100, 0, 24),
    v4(203, 0, 113, 0, 24),
    v4(224, 0, 0, 0, 3),
];

/// The IPv6 counterparts. Addresses that carry an IPv4 address (mapped, NAT64) are judged by it
/// instead (see [`embedded_v4`]), so this list never sees them.
const INTERNAL_V6: &[Ipv6Net] = &[
    v6([0, 0, 0, 0, 0, 0, 0, 0], 127),
    v6([0x64, 0xff9b, 1, 0, 0, 0, 0, 0], 48),
    v6([0x100, 0, 0, 0, 0, 0, 0, 0], 64),
    v6([0x2001, 0, 0, 0, 0, 0, 0, 0], 23),
    v6([0x2001, 0xdb8, 0, 0, 0, 0, 0, 0], 32),
    v6([0x2002, 0, 0, 0, 0, 0, 0, 0], 16),
    v6([0xfc00, 0, 0, 0, 0, 0, 0, 0], 7),
    v6([0xfe80, 0, 0, 0, 0, 0, 0, 0], 10),
    v6([0xfec0, 0, 0, 0, 0, 0, 0, 0], 10),
    v6([0xff00, 0, 0, 0, 0, 0, 0, 0], 8),
];

const fn v4(a: u8, b: u8, c: u8, d: u8, len: u8) -> Ipv4Net {
    Ipv4Net::new_assert(Ipv4Addr::new(a, b, c, d), len)
}

const fn v6(s: [u16; 8], len: u8) -> Ipv6Net {
    let addr = Ipv6Addr::new(s[0], s[1], s[2], s[3], s[4], s[5], s[6], s[7]);
    Ipv6Net::new_assert(addr, len)
}

/// The addresses webhooks may be sent to: public ones, and the internal networks allowed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Destinations {
    allowed: Vec<IpNet>,
}

/// How much of a block of addresses [`Destinations`] permits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reach {
    All,
    None,
    Part,
}

impl Destinations {
    /// Public addresses, and these internal networks besides.
    pub fn allowing(allowed: impl IntoIterator<Item = IpNet>) -> Self {
        Destinations {
            allowed: allowed.into_iter().map(|net| net.trunc()).collect(),
        }
    }

    pub fn allowed(&self) -> &[IpNet] {
        &self.allowed
    }

    pub fn permits(&self, ip: IpAddr) -> bool {
        let ip = embedded_v4(ip).map_or(ip, IpAddr::V4);
        let internal = match ip {
            IpAddr::V4(ip) => INTERNAL_V4.iter().any(|net| net.contains(&ip)),
            IpAddr::V6(ip) => INTERNAL_V6.iter().any(|net| net.contains(&ip)),
        };
        !internal || self.allowed.iter().any(|net| net.contains(&ip))
    }

    /// Whether every, no or some address of `block` is permitted: what the API document's URL
    /// pattern is built from, so that it states exactly the literal addresses a server accepts.
    pub fn reach(&self, block: Ipv4Net) -> Reach {
        let allowed = self.allowed.iter().filter_map(|net| match net {
            IpNet::V4(net) => Some(net),
            IpNet::V6(_) => None,
        });
        let mut overlaps_allowed = false;
        for net in allowed {
            if net.contains(&block) {
                return Reach::All;
            }
            overlaps_allowed |= block.contains(net);
        }
        let mut overlaps_internal = false;
        for net in INTERNAL_V4 {
            if net.contains(&block) && !overlaps_allowed {
                return Reach::None;
            }
            overlaps_internal |= net.contains(&block) || block.contains(net);
        }
        if overlaps_internal {
            Reach::Part
        } else {
            Reach::All
        }
    }
}

/// The IPv4 address an IPv6 one stands for: IPv4-mapped (`::ffff:a.b.c.d`) and the well-known
/// NAT64 prefix (`64:ff9b::a.b.c.d`), which a translator turns back into that IPv4 address.
fn embedded_v4(ip: IpAddr) -> Option<Ipv4Addr> {
    let IpAddr::V6(v6) = ip else { return None };
    if let Some(v4) = v6.to_ipv4_mapped() {
        return Some(v4);
    }
    let s = v6.segments();
    (s[..6] == [0x64, 0xff9b, 0, 0, 0, 0]).then(|| {
        let [a, b] = s[6].to_be_bytes();
        let [c, d] = s[7].to_be_bytes();
        Ipv4Addr::new(a, b, c, d)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    #[test]
    fn only_public_addresses_are_permitted_by_default() {
        let public = Destinations::default();
        for internal in [
            "127.0.0.1",
            "10.0.0.5",
            "172.31.255.255",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0",
            "224.0.0.1",
            "255.255.255.255",
            "::1",
            "::",
            "fe80::1",
            "fd00::1",
            "::ffff:127.0.0.1",
            "::ffff:10.1.2.3",
            "64:ff9b::a9fe:a9fe",
        ] {
            assert!(!public.permits(ip(internal)), "{internal}");
        }
        for outside in [
            "93.184.216.34",
            "172.32.0.1",
            "100.128.0.1",
            "8.8.8.8",
            "2606:4700::1111",
            "::ffff:1.1.1.1",
        ] {
            assert!(public.permits(ip(outside)), "{outside}");
        }
    }

    #[test]
    fn allowed_networks_are_permitted_and_nothing_beside_them() {
        let nets = ["127.0.0.0/8", "10.1.2.3/16"].map(|n| n.parse::<IpNet>().unwrap());
        let some = Destinations::allowing(nets);
        assert_eq!(
            some.allowed()[1].to_string(),
            "10.1.0.0/16",
            "kept as the network it names"
        );
        assert!(some.permits(ip("127.0.0.1")) && some.permits(ip("::ffff:127.0.0.2")));
        assert!(some.permits(ip("10.1.200.9")));
        assert!(!some.permits(ip("10.2.0.1")) && !some.permits(ip("::1")) && !some.permits(ip("169.254.169.254")));
    }

    #[test]
    fn reach_tells_whole_blocks_from_parts() {
        let block = |n: &str| n.parse::<Ipv4Net>().unwrap();
        let public = Destinations::default();
        assert_eq!(public.reach(block("0.0.0.0/0")), Reach::Part);
        assert_eq!(public.reach(block("10.0.0.0/8")), Reach::None);
        assert_eq!(public.reach(block("11.0.0.0/8")), Reach::All);
        assert_eq!(public.reach(block("172.0.0.0/8")), Reach::Part);
        assert_eq!(public.reach(block("172.20.0.0/16")), Reach::None);
        let some = Destinations::allowing(["10.1.0.0/16".parse().unwrap()]);
        assert_eq!(some.reach(block("10.0.0.0/8")), Reach::Part);
        assert_eq!(some.reach(block("10.1.0.0/16")), Reach::All);
        assert_eq!(some.reach(block("10.2.0.0/16")), Reach::None);
    }
}
