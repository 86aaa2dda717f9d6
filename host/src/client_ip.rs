//! The client's address for logs, metrics and throttling: the TCP peer, unless
//! the peer is a configured trusted proxy (`server.trusted_proxies`), in which
//! case `X-Forwarded-For` is read from the right, skipping trusted hops, and the
//! first untrusted address is the client. A header from anyone else is ignored,
//! so a client cannot choose the address it is logged and throttled under.

use std::net::IpAddr;

use http::HeaderMap;
use ipnet::IpNet;

/// The client address of a request from `peer` with `headers`.
pub fn resolve(peer: IpAddr, headers: &HeaderMap, trusted: &[IpNet]) -> IpAddr {
    let peer = canonical(peer);
    let is_trusted = |ip: &IpAddr| trusted.iter().any(|net| net.contains(ip));
    if trusted.is_empty() || !is_trusted(&peer) {
        return peer;
    }
    let hops: Vec<&str> = headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .collect();
    let mut client = peer;
    for hop in hops.iter().rev() {
        match parse_hop(hop) {
            Some(ip) => {
                client = ip;
                if !is_trusted(&ip) {
                    break;
                }
            }
            // An unreadable hop: nothing left of it can be believed.
            None => break,
        }
    }
    client
}

/// `1.2.3.4`, `1.2.3.4:5678`, `2001:db8::1`, `[2001:db8::1]:443`.
fn parse_hop(hop: &str) -> Option<IpAddr> {
    if let Ok(ip) = hop.parse::<IpAddr>() {
        return Some(canonical(ip));
    }
    hop.parse::<std::net::SocketAddr>()
        .ok()
        .map(|s| canonical(s.ip()))
}

/// IPv4-mapped IPv6 addresses as IPv4.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6
            .to_ipv4_mapped()
            .map(IpAddr::V4)
            .unwrap_or(IpAddr::V6(v6)),
        v4 => v4,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h(xff: &str) -> HeaderMap {
        let mut m = HeaderMap::new();
        m.insert("x-forwarded-for", xff.parse().unwrap());
        m
    }

    #[test]
    fn forwarded_for_only_from_trusted_proxies() {
        let trusted: Vec<IpNet> = vec!["10.0.0.0/8".parse().unwrap()];
        let proxy: IpAddr = "10.1.2.3".parse().unwrap();
        let stranger: IpAddr = "203.0.113.9".parse().unwrap();
        assert_eq!(
            resolve(proxy, &h("198.51.100.7, 10.9.9.9"), &trusted),
            "198.51.100.7".parse::<IpAddr>().unwrap()
        );
        assert_eq!(
            resolve(proxy, &h("6.6.6.6, 198.51.100.7:4431"), &trusted),
            "198.51.100.7".parse::<IpAddr>().unwrap()
        );
        assert_eq!(resolve(stranger, &h("1.1.1.1"), &trusted), stranger);
        assert_eq!(resolve(proxy, &h("1.1.1.1"), &[]), proxy);
        assert_eq!(resolve(proxy, &HeaderMap::new(), &trusted), proxy);
        assert_eq!(resolve(proxy, &h("garbage"), &trusted), proxy);
        assert_eq!(
            resolve(proxy, &h("10.0.0.5"), &trusted),
            "10.0.0.5".parse::<IpAddr>().unwrap()
        );
    }
}
