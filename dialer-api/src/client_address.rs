//! The client's address for per-client protections (the failed-authentication throttle): the TCP
//! peer, or, when the peer is one of `DIALER_API_TRUSTED_PROXIES`, the address its
//! `X-Forwarded-For` names. Proxies append, so the list is read from the right, skipping the
//! trusted ones; what a client wrote itself further left is never believed.

use std::net::IpAddr;

use actix_web::HttpRequest;

use dialer_core::config::AddressRange;

pub fn client_address(req: &HttpRequest, trusted: &[AddressRange]) -> Option<IpAddr> {
    let peer = req.peer_addr().map(|a| a.ip())?;
    let is_trusted = |a: IpAddr| trusted.iter().any(|r| r.contains(a));
    if !is_trusted(peer) {
        return Some(peer);
    }
    let forwarded: Vec<&str> = req
        .headers()
        .get_all("x-forwarded-for")
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .collect();
    let mut client = peer;
    for hop in forwarded.iter().rev() {
        match hop.parse::<IpAddr>() {
            Ok(a) if is_trusted(a) => client = a,
            Ok(a) => return Some(a),
            // A hop we cannot read: the nearest address we could is the client.
            Err(_) => return Some(client),
        }
    }
    Some(client)
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::test::TestRequest;

    fn resolve(peer: &str, xff: &[&str], trusted: &[&str]) -> Option<IpAddr> {
        let trusted: Vec<AddressRange> = trusted
            .iter()
            .filter_map(|t| AddressRange::parse(t))
            .collect();
        let mut req = TestRequest::default().peer_addr(peer.parse().expect("peer"));
        for v in xff {
            req = req.append_header(("X-Forwarded-For", *v));
        }
        client_address(&req.to_http_request(), &trusted)
    }

    #[test]
    fn forwarded_for_is_believed_only_from_trusted_proxies() {
        let ip = |t: &str| t.parse::<IpAddr>().ok();
        // No trusted proxy: the peer, whatever the header says.
        assert_eq!(
            resolve("198.51.100.7:1", &["203.0.113.5"], &[]),
            ip("198.51.100.7")
        );
        // From a trusted proxy: the rightmost address not trusted.
        assert_eq!(
            resolve(
                "10.0.0.2:1",
                &["1.2.3.4, 203.0.113.5, 10.0.0.9"],
                &["10.0.0.0/8"]
            ),
            ip("203.0.113.5")
        );
        assert_eq!(
            resolve("10.0.0.2:1", &["1.2.3.4", "203.0.113.6"], &["10.0.0.0/8"]),
            ip("203.0.113.6")
        );
        // Nothing but proxies, no header, or garbage: the nearest address read.
        assert_eq!(
            resolve("10.0.0.2:1", &["10.0.0.9"], &["10.0.0.0/8"]),
            ip("10.0.0.9")
        );
        assert_eq!(resolve("10.0.0.2:1", &[], &["10.0.0.0/8"]), ip("10.0.0.2"));
        assert_eq!(
            resolve("10.0.0.2:1", &["nonsense"], &["10.0.0.0/8"]),
            ip("10.0.0.2")
        );
    }
}
