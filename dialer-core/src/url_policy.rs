//! Which callback URLs may be called: `https` only, and never a private, loopback, link-local
//! or otherwise internal address, unless the deployment allows plain `http` to loopback (demos,
//! tests). The API checks a URL as written when it is set; names are checked where they are
//! resolved, by the callback worker's resolver, which applies [`UrlPolicy::address_allowed`] to
//! every address it connects to.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use url::Url;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UrlPolicyError {
    #[error("the callback URL is not a valid URL")]
    Invalid,
    #[error("callback URLs must use https")]
    NotHttps,
    #[error("the callback URL has no host")]
    NoHost,
    #[error("callback URLs may not carry a user name or password")]
    Credentials,
    #[error("the callback URL points at a private, loopback or link-local address ({0})")]
    ForbiddenAddress(IpAddr),
    #[error("the callback host `{0}` resolves only to private, loopback or link-local addresses")]
    ForbiddenName(String),
}

/// The policy of one deployment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UrlPolicy {
    /// `DIALER_ALLOW_HTTP_LOOPBACK_CALLBACKS`: http (and https) to loopback addresses.
    pub allow_loopback: bool,
}

impl UrlPolicy {
    /// Production: `https` to public addresses only.
    pub const STRICT: UrlPolicy = UrlPolicy {
        allow_loopback: false,
    };
    /// Demos and tests: loopback allowed, over `http` too.
    pub const LOOPBACK_ALLOWED: UrlPolicy = UrlPolicy {
        allow_loopback: true,
    };

    /// Checks a URL as written (scheme, credentials, literal addresses). Names are checked
    /// again by the callback worker's resolver on every connect.
    pub fn check(&self, url: &str) -> Result<Url, UrlPolicyError> {
        let parsed = Url::parse(url).map_err(|_| UrlPolicyError::Invalid)?;
        if !parsed.username().is_empty() || parsed.password().is_some() {
            return Err(UrlPolicyError::Credentials);
        }
        let host = parsed.host().ok_or(UrlPolicyError::NoHost)?;
        let literal: Option<IpAddr> = match host {
            url::Host::Ipv4(a) => Some(IpAddr::V4(a)),
            url::Host::Ipv6(a) => Some(IpAddr::V6(a)),
            url::Host::Domain(_) => None,
        };
        let loopback_host = match (literal, host) {
            (Some(ip), _) => is_loopback(ip),
            (None, url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
            _ => false,
        };
        match parsed.scheme() {
            "https" => {}
            "http" if self.allow_loopback && loopback_host => {}
            _ => return Err(UrlPolicyError::NotHttps),
        }
        if let Some(ip) = literal
            && !self.address_allowed(ip)
        {
            return Err(UrlPolicyError::ForbiddenAddress(ip));
        }
        Ok(parsed)
    }

    pub fn address_allowed(&self, ip: IpAddr) -> bool {
        if is_loopback(ip) {
            return self.allow_loopback;
        }
        is_public(ip)
    }
}

fn is_loopback(ip: IpAddr) -> bool {
    match canonical(ip) {
        IpAddr::V4(a) => a.is_loopback(),
        IpAddr::V6(a) => a.is_loopback(),
    }
}

/// IPv4-mapped IPv6 addresses (`::ffff:10.0.0.1`) are judged as the IPv4 address they carry.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => IpAddr::V6(v6),
        },
        v4 => v4,
    }
}

/// Globally routable unicast: not private, loopback, link-local, shared (CGNAT), multicast,
/// broadcast, documentation, benchmarking, reserved or unspecified.
pub fn is_public(ip: IpAddr) -> bool {
    match canonical(ip) {
        IpAddr::V4(a) => is_public_v4(a),
        IpAddr::V6(a) => is_public_v6(a),
    }
}

fn is_public_v4(a: Ipv4Addr) -> bool {
    let [o0, o1, o2, _] = a.octets();
    !(a.is_private()
        || a.is_loopback()
        || a.is_link_local()
        || a.is_multicast()
        || a.is_broadcast()
        || a.is_documentation()
        || a.is_unspecified()
        || o0 == 0
        || (o0 == 100 && (o1 & 0xc0) == 64) // 100.64.0.0/10 shared address space
        || (o0 == 192 && o1 == 0 && o2 == 0) // 192.0.0.0/24 protocol assignments
        || (o0 == 198 && (o1 & 0xfe) == 18) // 198.18.0.0/15 benchmarking
        || o0 >= 240) // reserved
}

fn is_public_v6(a: Ipv6Addr) -> bool {
    let s = a.segments();
    !(a.is_loopback()
        || a.is_unspecified()
        || a.is_multicast()
        || (s[0] & 0xfe00) == 0xfc00 // unique local fc00::/7
        || (s[0] & 0xffc0) == 0xfe80 // link-local fe80::/10
        || (s[0] & 0xffc0) == 0xfec0 // site-local (deprecated)
        || (s[0] == 0x2001 && s[1] == 0x0db8) // documentation
        || (s[0] == 0x0064 && s[1] == 0xff9b) // NAT64 can reach private IPv4
        || a.to_ipv4().is_some_and(|v4| !is_public_v4(v4)) && s[0..6] == [0; 6]
        || tunnelled_v4(s).iter().any(|v4| !is_public_v4(*v4)))
}

/// The IPv4 addresses a tunnelling prefix carries, which a relay may deliver to: 6to4
/// (`2002:AABB:CCDD::/48` is AABB.CCDD) and Teredo (`2001:0::/32`: the server in bits 32-63,
/// the client inverted in the last 32 bits).
fn tunnelled_v4(s: [u16; 8]) -> Vec<Ipv4Addr> {
    let v4 = |hi: u16, lo: u16| Ipv4Addr::from((u32::from(hi) << 16) | u32::from(lo));
    match (s[0], s[1]) {
        (0x2002, _) => vec![v4(s[1], s[2])],
        (0x2001, 0x0000) => vec![v4(s[2], s[3]), v4(!s[6], !s[7])],
        _ => Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const STRICT: UrlPolicy = UrlPolicy::STRICT;
    const TESTS: UrlPolicy = UrlPolicy::LOOPBACK_ALLOWED;

    #[test]
    fn only_https_to_public_addresses_by_default() {
        for url in [
            "https://hooks.example.com/cb",
            "https://93.184.216.34/cb",
            // Tunnelled public addresses stay reachable: 6to4 and Teredo of 93.184.216.34.
            "https://[2002:5db8:d822::1]/cb",
            "https://[2001:0:5db8:d822::a247:27dd]/cb",
        ] {
            assert!(STRICT.check(url).is_ok(), "{url} must be allowed");
        }
        for (url, error) in [
            ("http://hooks.example.com/cb", UrlPolicyError::NotHttps),
            ("ftp://hooks.example.com/", UrlPolicyError::NotHttps),
            (
                "https://u:p@hooks.example.com/",
                UrlPolicyError::Credentials,
            ),
            ("not a url", UrlPolicyError::Invalid),
        ] {
            assert_eq!(STRICT.check(url).err(), Some(error), "{url}");
        }
        for url in [
            "https://127.0.0.1/",
            "https://10.1.2.3/",
            "https://172.16.0.1/",
            "https://192.168.1.1/",
            "https://169.254.169.254/latest/meta-data",
            "https://100.64.0.1/",
            "https://0.0.0.0/",
            "https://[::1]/",
            "https://[fe80::1]/",
            "https://[fd00::1]/",
            "https://[::ffff:10.0.0.1]/",
            "https://[::ffff:127.0.0.1]/",
            // 6to4 of 169.254.169.254, 10.0.0.1 and 127.0.0.1
            "https://[2002:a9fe:a9fe::1]/",
            "https://[2002:a00:1::1]/",
            "https://[2002:7f00:1::1]/",
            // Teredo: server 10.0.0.1; client 192.168.1.1 (inverted) behind a public server
            "https://[2001:0:a00:1::5db8:5db8]/",
            "https://[2001:0:5db8:5db8::3f57:fefe]/",
        ] {
            assert!(
                matches!(STRICT.check(url), Err(UrlPolicyError::ForbiddenAddress(_))),
                "{url} must be refused"
            );
        }
    }

    #[test]
    fn loopback_only_when_allowed_and_never_private() {
        assert!(TESTS.check("http://127.0.0.1:8080/cb").is_ok());
        assert!(TESTS.check("http://localhost:8080/cb").is_ok());
        assert!(TESTS.check("https://127.0.0.1:8443/cb").is_ok());
        assert_eq!(
            TESTS.check("http://hooks.example.com/cb").err(),
            Some(UrlPolicyError::NotHttps)
        );
        assert!(matches!(
            TESTS.check("https://10.0.0.1/"),
            Err(UrlPolicyError::ForbiddenAddress(_))
        ));
        assert!(matches!(
            TESTS.check("http://10.0.0.1/"),
            Err(UrlPolicyError::NotHttps)
        ));
        assert!(STRICT.check("http://127.0.0.1:8080/cb").is_err());
        // The loopback flag allows loopback itself, never a tunnel to it.
        assert!(matches!(
            TESTS.check("https://[2002:7f00:1::1]/"),
            Err(UrlPolicyError::ForbiddenAddress(_))
        ));
    }
}
