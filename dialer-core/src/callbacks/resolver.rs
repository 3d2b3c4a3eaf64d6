//! The callback worker's DNS resolver: the URL policy of dialer-core
//! ([`crate::url_policy`]) applied to every address a callback host resolves to, so the
//! address checked is the address connected to (no DNS rebinding between a check and the connect).

use std::net::SocketAddr;

use crate::url_policy::{UrlPolicy, UrlPolicyError};
use reqwest::dns::{Addrs, Name, Resolve, Resolving};

/// The HTTP client's resolver: resolves with the system resolver and keeps only the addresses
/// the policy allows, so a name that resolves (or re-resolves) to an internal address is never
/// connected to.
#[derive(Debug, Clone)]
pub struct PolicyResolver {
    pub policy: UrlPolicy,
}

impl Resolve for PolicyResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let policy = self.policy;
        let host = name.as_str().to_owned();
        Box::pin(async move {
            let found: Vec<SocketAddr> =
                tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            let allowed: Vec<SocketAddr> = found
                .into_iter()
                .filter(|a| policy.address_allowed(a.ip()))
                .collect();
            if allowed.is_empty() {
                return Err(Box::new(UrlPolicyError::ForbiddenName(host)) as _);
            }
            Ok(Box::new(allowed.into_iter()) as Addrs)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const STRICT: UrlPolicy = UrlPolicy::STRICT;
    const TESTS: UrlPolicy = UrlPolicy::LOOPBACK_ALLOWED;

    #[tokio::test]
    async fn the_resolver_refuses_names_of_internal_addresses() {
        let strict = PolicyResolver { policy: STRICT };
        let name: Name = "localhost".parse().expect("name");
        let err = strict.resolve(name).await.err().map(|e| e.to_string());
        assert_eq!(
            err.as_deref(),
            Some(
                "the callback host `localhost` resolves only to private, loopback or link-local addresses"
            )
        );
        let tests = PolicyResolver { policy: TESTS };
        let name: Name = "localhost".parse().expect("name");
        let addrs: Vec<SocketAddr> = tests.resolve(name).await.expect("resolves").collect();
        assert!(!addrs.is_empty());
        assert!(addrs.iter().all(|a| a.ip().is_loopback()));
    }
}
