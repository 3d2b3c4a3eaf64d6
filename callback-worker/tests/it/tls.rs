//! A real rustls receiver on 127.0.0.1 with a certificate from a CA made here: trusted when the
//! account carries that CA, refused (never sent to) when it does not.

use std::sync::Arc;

use crate::helpers::{Harness, account_events_in, secret};
use crate::receiver::{self, ReceiverState};
use dialer_core::domain::DeliveryStatus::{Delivered, Failed};
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

struct Pki {
    ca_pem: String,
    server: Arc<rustls::ServerConfig>,
}

fn make_pki() -> Pki {
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).expect("ca params");
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(DnType::CommonName, "callback test CA");
    let ca_key = KeyPair::generate().expect("ca key");
    let ca_cert = ca_params.self_signed(&ca_key).expect("ca cert");
    let issuer = Issuer::new(ca_params, ca_key);
    let leaf_key = KeyPair::generate().expect("leaf key");
    let leaf = CertificateParams::new(vec!["127.0.0.1".to_owned(), "localhost".to_owned()])
        .expect("leaf params")
        .signed_by(&leaf_key, &issuer)
        .expect("leaf cert");
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let server = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("protocols")
        .with_no_client_auth()
        .with_single_cert(
            vec![
                CertificateDer::from(leaf.der().to_vec()),
                CertificateDer::from(ca_cert.der().to_vec()),
            ],
            PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(leaf_key.serialize_der())),
        )
        .expect("server config");
    Pki {
        ca_pem: ca_cert.pem(),
        server: Arc::new(server),
    }
}

#[tokio::test]
async fn the_accounts_own_ca_is_trusted_and_an_unknown_certificate_is_not() {
    let h = Harness::new().await;
    let pki = make_pki();
    let s = secret();
    let state = ReceiverState::new(vec![s.clone()]);
    let addr = receiver::start(state.clone(), Some(pki.server.clone())).await;
    let url = format!("https://127.0.0.1:{}/cb", addr.port());
    let trusting = h.account("TLSCA", &url, &s, false, Some(&pki.ca_pem)).await;
    let untrusting = h.account("TLSNOCA", &url, &s, false, None).await;
    // A CA that did not issue the receiver's certificate does not help either.
    let other = make_pki();
    let wrong_ca = h
        .account("TLSWRONG", &url, &s, false, Some(&other.ca_pem))
        .await;
    for a in [trusting, untrusting, wrong_ca] {
        h.events(a, 2, 1).await;
    }
    h.settle_without_retries(6).await;
    let status_of = account_events_in;
    assert_eq!(h.count(&status_of(trusting, Delivered)).await, 2);
    assert_eq!(h.count(&status_of(untrusting, Failed)).await, 2);
    assert_eq!(h.count(&status_of(wrong_ca, Failed)).await, 2);
    assert_eq!(
        state.accepted().len(),
        2,
        "only the trusting account's events arrive"
    );
    assert_eq!(
        h.count(
            "SELECT count(*) AS n FROM callback_deliveries WHERE error LIKE '%certificate%' AND status_code IS NULL"
        )
        .await,
        4
    );
}
