//! Where a request came from: one rule for every service (rate limits at the gateway,
//! sign-in throttling and security events at auth).
//!
//! `X-Forwarded-For` is a list every proxy appends its peer to, so only its right end can be
//! believed: the entries our own proxies added. The client is the rightmost address that is
//! not one of them; whatever a client wrote to the left of it is ignored.

use std::fmt;
use std::net::IpAddr;

use actix_web::HttpRequest;
use ipnet::IpNet;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// The networks of the proxies in front of a service (the ingress controller, the gateway),
/// whose `X-Forwarded-For` entries are trusted. Empty: the connection's peer is the client.
///
/// Configured as a list (`["10.0.0.0/8", "127.0.0.1"]`) or one comma-separated string, which
/// is what an environment variable holds; a bare address is its own /32 or /128.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct TrustedProxies(Vec<IpNet>);

#[derive(Debug, thiserror::Error)]
#[error("trusted proxy `{0}` is neither an IP address nor a CIDR network")]
pub struct TrustedProxyError(String);

impl TrustedProxies {
    pub fn parse<'a>(
        entries: impl IntoIterator<Item = &'a str>,
    ) -> Result<Self, TrustedProxyError> {
        entries
            .into_iter()
            .map(str::trim)
            .filter(|e| !e.is_empty())
            .map(|e| {
                e.parse::<IpNet>()
                    .or_else(|_| e.parse::<IpAddr>().map(IpNet::from))
                    .map_err(|_| TrustedProxyError(e.to_owned()))
            })
            .collect::<Result<_, _>>()
            .map(Self)
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    fn contains(&self, ip: &IpAddr) -> bool {
        // An IPv4 peer on a dual-stack socket shows as ::ffff:a.b.c.d.
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(*ip),
            v4 => *v4,
        };
        self.0.iter().any(|net| net.contains(&ip))
    }
}

impl fmt::Debug for TrustedProxies {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list()
            .entries(self.0.iter().map(|n| n.to_string()))
            .finish()
    }
}

impl Serialize for TrustedProxies {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(self.0.iter().map(|n| n.to_string()))
    }
}

impl<'de> Deserialize<'de> for TrustedProxies {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Form {
            List(Vec<String>),
            Joined(String),
        }
        let parsed = match Form::deserialize(d)? {
            Form::List(list) => Self::parse(list.iter().map(String::as_str)),
            Form::Joined(joined) => Self::parse(joined.split(',')),
        };
        parsed.map_err(serde::de::Error::custom)
    }
}

/// The client's address: starting at the connection's peer and walking `X-Forwarded-For`
/// (all its lines, in order) from the right, the first address that is not a trusted proxy.
/// An entry that is not an address stops the walk at the hop that wrote it. `None` when the
/// peer is unknown.
pub fn client_ip(req: &HttpRequest, trusted: &TrustedProxies) -> Option<IpAddr> {
    let mut client = req.peer_addr()?.ip();
    if trusted.is_empty() {
        return Some(client);
    }
    let lines: Vec<&str> = req
        .headers()
        .get_all("x-forwarded-for")
        .filter_map(|v| v.to_str().ok())
        .collect();
    let mut hops = lines.iter().flat_map(|l| l.split(',')).rev();
    while trusted.contains(&client) {
        match hops.next().map(|h| h.trim().parse::<IpAddr>()) {
            Some(Ok(hop)) => client = hop,
            Some(Err(_)) | None => break,
        }
    }
    Some(client)
}

#[cfg(test)]
mod tests {
    use super::{client_ip, TrustedProxies};
    use actix_web::test::TestRequest;

    fn ip(req: &actix_web::HttpRequest, trusted: &[&str]) -> Option<String> {
        let trusted = TrustedProxies::parse(trusted.iter().copied()).unwrap();
        client_ip(req, &trusted).map(|a| a.to_string())
    }

    fn request(forwarded: &[&str]) -> actix_web::HttpRequest {
        let mut req = TestRequest::default().peer_addr(([10, 0, 0, 5], 4711).into());
        for line in forwarded {
            req = req.append_header(("x-forwarded-for", *line));
        }
        req.to_http_request()
    }

    #[test]
    fn without_trusted_proxies_the_client_is_the_peer() {
        assert_eq!(
            ip(&request(&["203.0.113.7"]), &[]).as_deref(),
            Some("10.0.0.5")
        );
        assert_eq!(ip(&TestRequest::default().to_http_request(), &[]), None);
    }

    #[test]
    fn the_client_is_the_rightmost_address_no_trusted_proxy_has() {
        // The client wrote 198.51.100.1 itself; the ingress appended the real peer.
        let req = request(&["198.51.100.1, 203.0.113.7"]);
        assert_eq!(ip(&req, &["10.0.0.0/8"]).as_deref(), Some("203.0.113.7"));
        // Two proxies of ours (the ingress at 10.0.0.9, then the gateway at 10.0.0.5).
        let req = request(&["198.51.100.1", "203.0.113.7, 10.0.0.9"]);
        assert_eq!(ip(&req, &["10.0.0.0/8"]).as_deref(), Some("203.0.113.7"));
    }

    #[test]
    fn a_peer_that_is_not_a_trusted_proxy_is_the_client_whatever_it_claims() {
        let req = request(&["203.0.113.7"]);
        assert_eq!(ip(&req, &["192.168.0.0/16"]).as_deref(), Some("10.0.0.5"));
    }

    #[test]
    fn junk_stops_the_walk_at_the_hop_that_wrote_it() {
        let req = request(&["not-an-address, 10.0.0.9"]);
        assert_eq!(ip(&req, &["10.0.0.0/8"]).as_deref(), Some("10.0.0.9"));
        let req = request(&[]);
        assert_eq!(ip(&req, &["10.0.0.0/8"]).as_deref(), Some("10.0.0.5"));
    }

    #[test]
    fn trusted_proxies_are_a_list_or_one_comma_separated_string() {
        let list: TrustedProxies = serde_json::from_str(r#"["10.0.0.0/8", "::1"]"#).unwrap();
        let joined: TrustedProxies = serde_json::from_str(r#""10.0.0.0/8, ::1""#).unwrap();
        assert_eq!(list, joined);
        assert_eq!(format!("{list:?}"), r#"["10.0.0.0/8", "::1/128"]"#);
        assert!(serde_json::from_str::<TrustedProxies>(r#""10.0.0.0/33""#).is_err());
        assert!(serde_json::from_str::<TrustedProxies>(r#""""#)
            .unwrap()
            .is_empty());
    }
}
