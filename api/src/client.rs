//! Who the client is: the peer's address, or, when the peer is a proxy the operator trusts,
//! the address that proxy reports in `X-Forwarded-For`.
//!
//! `X-Forwarded-For` is a list each proxy appends its peer to, so only its right end is
//! vouched for: the client is the right-most address that is not itself a trusted proxy
//! (read from the right, as RFC 7239 section 7.4 advises for the `Forwarded` header). A
//! client that writes the header itself only adds addresses to the left, which are never
//! reached while a trusted proxy is in front.

use axum::http::HeaderMap;
use std::net::IpAddr;

/// The proxies allowed to name the client: address ranges (`10.0.0.0/8`, `fd00::/8`,
/// `127.0.0.1`), everyone, or no one (the default).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TrustedProxies {
    ranges: Vec<(IpAddr, u8)>,
    everyone: bool,
}

impl TrustedProxies {
    /// No proxy is trusted: the client is always the peer.
    pub fn none() -> Self {
        TrustedProxies::default()
    }

    /// Every peer is trusted, so the left-most `X-Forwarded-For` address is the client: for a
    /// deployment whose every connection comes through its own proxy (and for the demo).
    pub fn everyone() -> Self {
        TrustedProxies {
            ranges: Vec::new(),
            everyone: true,
        }
    }

    /// Parses a comma-separated list of addresses and CIDR ranges.
    ///
    /// Errors: the entry that is neither, such as `10.0.0.0/33`.
    pub fn parse(list: &str) -> Result<Self, String> {
        let mut ranges = Vec::new();
        for entry in list.split(',').map(str::trim).filter(|e| !e.is_empty()) {
            let (addr, bits) = entry.split_once('/').unwrap_or((entry, ""));
            let addr: IpAddr = addr
                .parse()
                .map_err(|_| format!("`{entry}`: expected an IP address or CIDR range"))?;
            let max = if addr.is_ipv4() { 32 } else { 128 };
            let bits = if bits.is_empty() {
                max
            } else {
                bits.parse::<u8>()
                    .ok()
                    .filter(|b| *b <= max)
                    .ok_or_else(|| format!("`{entry}`: prefix length must be 0 to {max}"))?
            };
            ranges.push((addr, bits));
        }
        Ok(TrustedProxies {
            ranges,
            everyone: false,
        })
    }

    /// Whether `ip` is a trusted proxy.
    pub fn contains(&self, ip: IpAddr) -> bool {
        self.everyone
            || self
                .ranges
                .iter()
                .any(|&(net, bits)| in_range(ip, net, bits))
    }

    /// Whether any proxy is trusted.
    pub fn is_empty(&self) -> bool {
        !self.everyone && self.ranges.is_empty()
    }
}

/// A set of address ranges (`40.92.0.0/15`, `2001:db8::/32`, single addresses), parsed and
/// matched as [`TrustedProxies`] are: used for the scanner networks of promo clicks.
pub type AddressRanges = TrustedProxies;

fn bits_of(ip: IpAddr) -> (u128, u8) {
    match ip {
        IpAddr::V4(v4) => (u128::from(u32::from(v4)), 32),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => (u128::from(u32::from(v4)), 32),
            None => (u128::from(v6), 128),
        },
    }
}

fn in_range(ip: IpAddr, net: IpAddr, prefix: u8) -> bool {
    let ((a, width), (b, net_width)) = (bits_of(ip), bits_of(net));
    if width != net_width {
        return false;
    }
    if prefix == 0 {
        return true;
    }
    let shift = u32::from(width - prefix.min(width));
    (a >> shift) == (b >> shift)
}

/// One `X-Forwarded-For` entry as proxies write it: an address (`203.0.113.7`, `2001:db8::1`),
/// with a port (`203.0.113.7:51234`, `[2001:db8::1]:443`), bracketed, or quoted.
pub fn parse_hop(hop: &str) -> Option<IpAddr> {
    let hop = hop.trim().trim_matches('"');
    if let Some(rest) = hop.strip_prefix('[') {
        return rest.split_once(']')?.0.parse().ok();
    }
    if let Ok(ip) = hop.parse() {
        return Some(ip);
    }
    match hop.split_once(':') {
        Some((v4, port)) if !port.contains(':') && port.parse::<u16>().is_ok() => v4.parse().ok(),
        _ => None,
    }
}

/// The address a limit counts a client by: an IPv4 address as it is, an IPv6 address as its
/// /64 (one subscriber holds a whole /64, RFC 6177), IPv4-mapped IPv6 as the IPv4 address.
pub fn limit_key(addr: IpAddr) -> IpAddr {
    match addr {
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let mut o = v6.octets();
                o[8..].fill(0);
                IpAddr::from(o)
            }
        },
        other => other,
    }
}

/// The client's address: `peer` unless it is a trusted proxy, in which case the right-most
/// `X-Forwarded-For` address that is not a trusted proxy (with everyone trusted, the
/// left-most). An unparsable entry ends the walk at the last address vouched for.
pub fn client_addr(peer: IpAddr, headers: &HeaderMap, trusted: &TrustedProxies) -> IpAddr {
    if !trusted.contains(peer) {
        return peer;
    }
    let hops: Vec<&str> = headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .collect();
    if trusted.everyone {
        return hops.first().and_then(|h| parse_hop(h)).unwrap_or(peer);
    }
    let mut client = peer;
    for hop in hops.iter().rev() {
        let Some(ip) = parse_hop(hop) else {
            break;
        };
        client = ip;
        if !trusted.contains(ip) {
            break;
        }
    }
    client
}

#[cfg(test)]
mod tests {
    use super::*;

    fn xff(v: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert("x-forwarded-for", v.parse().unwrap());
        h
    }

    #[test]
    fn only_trusted_proxies_name_the_client() {
        let proxy: IpAddr = "10.0.0.5".parse().unwrap();
        let outside: IpAddr = "203.0.113.9".parse().unwrap();
        let trusted = TrustedProxies::parse("10.0.0.0/8, 192.168.1.1").unwrap();
        // A spoofed header from a client that is not a proxy is ignored.
        assert_eq!(client_addr(outside, &xff("1.2.3.4"), &trusted), outside);
        // Through one trusted proxy: the address it appended.
        assert_eq!(
            client_addr(proxy, &xff("1.2.3.4, 198.51.100.7"), &trusted),
            "198.51.100.7".parse::<IpAddr>().unwrap(),
            "the left part was written by the client and is not believed"
        );
        // Through two trusted proxies.
        assert_eq!(
            client_addr(proxy, &xff("198.51.100.7, 192.168.1.1"), &trusted),
            "198.51.100.7".parse::<IpAddr>().unwrap()
        );
        assert_eq!(client_addr(proxy, &HeaderMap::new(), &trusted), proxy);
        assert_eq!(client_addr(proxy, &xff("garbage"), &trusted), proxy);
        assert_eq!(
            client_addr(
                outside,
                &xff("1.2.3.4, 5.6.7.8"),
                &TrustedProxies::everyone()
            ),
            "1.2.3.4".parse::<IpAddr>().unwrap()
        );
        assert_eq!(
            client_addr(proxy, &xff("1.2.3.4"), &TrustedProxies::none()),
            proxy
        );
    }

    #[test]
    fn the_forms_proxies_write_are_read() {
        let v4: IpAddr = "203.0.113.7".parse().unwrap();
        let v6: IpAddr = "2001:db8::1".parse().unwrap();
        for (hop, want) in [
            ("203.0.113.7", Some(v4)),
            ("203.0.113.7:51234", Some(v4)),
            (" 203.0.113.7 ", Some(v4)),
            ("\"203.0.113.7\"", Some(v4)),
            ("2001:db8::1", Some(v6)),
            ("[2001:db8::1]", Some(v6)),
            ("[2001:db8::1]:443", Some(v6)),
            ("unknown", None),
            ("203.0.113.7:port", None),
            ("", None),
        ] {
            assert_eq!(parse_hop(hop), want, "{hop}");
        }
        // Two shoppers behind one load balancer that adds ports stay two.
        let lb: IpAddr = "10.0.0.5".parse().unwrap();
        let trusted = TrustedProxies::parse("10.0.0.0/8").unwrap();
        assert_eq!(client_addr(lb, &xff("203.0.113.7:51234"), &trusted), v4);
        assert_eq!(
            client_addr(lb, &xff("198.51.100.9:40000"), &trusted),
            "198.51.100.9".parse::<IpAddr>().unwrap()
        );
        assert_eq!(client_addr(lb, &xff("[2001:db8::1]:443"), &trusted), v6);
    }

    #[test]
    fn ranges_parse_and_match() {
        let t = TrustedProxies::parse("fd00::/8,127.0.0.1,0.0.0.0/0").unwrap();
        assert!(t.contains("fd12::1".parse().unwrap()));
        assert!(t.contains("8.8.8.8".parse().unwrap()));
        assert!(t.contains("::ffff:8.8.8.8".parse().unwrap()));
        assert!(!t.contains("2001:db8::1".parse().unwrap()));
        assert!(TrustedProxies::parse("10.0.0.0/33").is_err());
        assert!(TrustedProxies::parse("10.0.0/8").is_err());
        assert!(TrustedProxies::parse("").unwrap().is_empty());
    }
}
