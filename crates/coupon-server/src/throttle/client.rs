//! Who is at the other end: the TCP peer, or, when that peer is a trusted proxy, the nearest
//! address in `X-Forwarded-For` that no trusted proxy added.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use axum::extract::{FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::HeaderMap;

use super::ThrottleConfig;
use crate::AppState;

/// The connection's peer, put on each request by `serve`.
#[derive(Debug, Clone, Copy)]
pub struct PeerAddr(pub SocketAddr);

/// The client's address as far as the trusted proxies tell it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientIp(pub IpAddr);

impl ClientIp {
    pub fn of(req: &Request, config: &ThrottleConfig) -> ClientIp {
        let peer = req.extensions().get::<PeerAddr>().map(|p| p.0.ip());
        resolve(peer, req.headers(), config)
    }
}

fn resolve(peer: Option<IpAddr>, headers: &HeaderMap, config: &ThrottleConfig) -> ClientIp {
    // Without a peer (a request built in-process), every such request shares one address.
    let peer = peer.unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED));
    if !config.trusts(peer) {
        return ClientIp(peer);
    }
    // Each proxy appends the address it saw: read from the right, past our own proxies. A
    // malformed entry ends the walk, and the last address believed stands.
    let mut client = peer;
    let hops = headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .collect::<Vec<_>>();
    for hop in hops.iter().rev() {
        match hop.trim().parse::<IpAddr>() {
            Ok(ip) => {
                client = ip;
                if !config.trusts(ip) {
                    break;
                }
            }
            Err(_) => break,
        }
    }
    ClientIp(client)
}

impl FromRequestParts<AppState> for ClientIp {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        if let Some(ip) = parts.extensions.get::<ClientIp>() {
            return Ok(*ip);
        }
        let peer = parts.extensions.get::<PeerAddr>().map(|p| p.0.ip());
        Ok(resolve(peer, &parts.headers, state.throttle.config()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seen(peer: &str, forwarded: &[&str], trusted: &[&str]) -> String {
        let mut config = ThrottleConfig::default();
        config.trusted_proxies = trusted.iter().map(|n| n.parse().unwrap()).collect();
        let mut headers = HeaderMap::new();
        for f in forwarded {
            headers.append("x-forwarded-for", f.parse().unwrap());
        }
        resolve(Some(peer.parse().unwrap()), &headers, &config).0.to_string()
    }

    #[test]
    fn forwarded_addresses_are_believed_only_from_trusted_proxies() {
        assert_eq!(seen("203.0.113.9", &["198.51.100.1"], &[]), "203.0.113.9");
        assert_eq!(seen("10.0.0.2", &["198.51.100.1"], &["10.0.0.0/8"]), "198.51.100.1");
        // A client cannot hide behind an address it wrote itself: the proxy's entry is the last.
        assert_eq!(
            seen("10.0.0.2", &["6.6.6.6, 198.51.100.1"], &["10.0.0.0/8"]),
            "198.51.100.1"
        );
        assert_eq!(
            seen("10.0.0.2", &["198.51.100.1, 10.0.0.7"], &["10.0.0.0/8"]),
            "198.51.100.1"
        );
        assert_eq!(seen("10.0.0.2", &["junk"], &["10.0.0.0/8"]), "10.0.0.2");
        assert_eq!(seen("10.0.0.2", &[], &["10.0.0.0/8"]), "10.0.0.2");
        assert_eq!(
            seen("10.0.0.2", &["::1", "2001:db8::5"], &["10.0.0.0/8"]),
            "2001:db8::5"
        );
    }
}
