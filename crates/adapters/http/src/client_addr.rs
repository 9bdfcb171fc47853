//! Where a request came from: one rule for every service (rate limits at the gateway,
//! sign-in throttling and security events at auth).

use std::net::IpAddr;

use actix_web::HttpRequest;

/// The client's address: the first `X-Forwarded-For` entry when that header is trusted (set
/// only behind a proxy that overwrites it) and holds an IP address, else the connection's
/// peer; `None` when neither is known.
pub fn client_ip(req: &HttpRequest, trust_forwarded_for: bool) -> Option<IpAddr> {
    let forwarded = trust_forwarded_for
        .then(|| {
            req.headers()
                .get("x-forwarded-for")
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.split(',').next())
                .and_then(|v| v.trim().parse::<IpAddr>().ok())
        })
        .flatten();
    forwarded.or_else(|| req.peer_addr().map(|a| a.ip()))
}

#[cfg(test)]
mod tests {
    use super::client_ip;
    use actix_web::test::TestRequest;

    #[test]
    fn the_client_address_is_the_peer_unless_the_forwarded_header_is_trusted() {
        let req = TestRequest::default()
            .peer_addr(([10, 0, 0, 5], 4711).into())
            .insert_header(("x-forwarded-for", "203.0.113.7, 10.0.0.9"))
            .to_http_request();
        let ip = |r, trust| client_ip(r, trust).map(|a| a.to_string());
        assert_eq!(ip(&req, false).as_deref(), Some("10.0.0.5"));
        assert_eq!(ip(&req, true).as_deref(), Some("203.0.113.7"));
        let junk = TestRequest::default()
            .peer_addr(([10, 0, 0, 5], 4711).into())
            .insert_header(("x-forwarded-for", "not-an-address"))
            .to_http_request();
        assert_eq!(ip(&junk, true).as_deref(), Some("10.0.0.5"));
        assert_eq!(ip(&TestRequest::default().to_http_request(), true), None);
    }
}
