//! One HTTP attempt: POST the stored body with its signature headers, read at most 1 KB of the
//! answer, and say what happened. Clients reuse connections, never follow redirects, resolve
//! through the URL policy, and verify certificates (with an account's own CA when it has one).

use std::time::{Duration, Instant};

use bytes::Bytes;
use reqwest::header::{CONTENT_TYPE, HeaderValue, USER_AGENT};
use url::Url;

use super::resolver::PolicyResolver;
use super::signing::SignatureHeaders;
use crate::url_policy::UrlPolicy;

/// How much of an answer is read and kept.
pub const RESPONSE_HEAD_BYTES: usize = 1024;

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("the account's CA certificate is not valid PEM: {0}")]
    BadCaCert(String),
    #[error("cannot build the HTTP client: {0}")]
    Build(String),
}

#[derive(Debug, Clone, Copy)]
pub struct HttpSettings {
    pub connect_timeout: Duration,
    pub request_timeout: Duration,
    pub policy: UrlPolicy,
}

/// A client for endpoints with publicly trusted certificates or, with `ca_pem`, for an
/// endpoint whose certificate chains to that CA only.
pub fn build_client(
    settings: &HttpSettings,
    ca_pem: Option<&str>,
) -> Result<reqwest::Client, ClientError> {
    let mut builder = reqwest::Client::builder()
        .connect_timeout(settings.connect_timeout)
        .timeout(settings.request_timeout)
        .redirect(reqwest::redirect::Policy::none())
        // Never through a proxy from the environment: the policy checks the address we connect to.
        .no_proxy()
        .tcp_nodelay(true)
        .pool_idle_timeout(Duration::from_secs(60))
        .pool_max_idle_per_host(64)
        .dns_resolver(std::sync::Arc::new(PolicyResolver {
            policy: settings.policy,
        }));
    if let Some(pem) = ca_pem {
        let certs = reqwest::Certificate::from_pem_bundle(pem.as_bytes())
            .map_err(|e| ClientError::BadCaCert(e.to_string()))?;
        if certs.is_empty() {
            return Err(ClientError::BadCaCert("no certificate in it".into()));
        }
        builder = builder.tls_certs_only(certs);
    }
    builder
        .build()
        .map_err(|e| ClientError::Build(error_chain(&e)))
}

/// What one attempt found out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttemptReport {
    pub status_code: Option<u16>,
    pub error: Option<String>,
    pub latency: Duration,
    pub response_head: Option<String>,
}

impl AttemptReport {
    pub fn delivered(&self) -> bool {
        self.error.is_none() && self.status_code.is_some_and(|s| (200..300).contains(&s))
    }

    /// A failure found before any request was made (URL refused by the policy, bad CA).
    pub fn refused(reason: String) -> AttemptReport {
        AttemptReport {
            status_code: None,
            error: Some(reason),
            latency: Duration::ZERO,
            response_head: None,
        }
    }
}

pub async fn post(
    client: &reqwest::Client,
    url: &Url,
    signature: &SignatureHeaders,
    body: Bytes,
) -> AttemptReport {
    let started = Instant::now();
    let request = client
        .post(url.clone())
        .header(CONTENT_TYPE, HeaderValue::from_static("application/json"))
        .header(USER_AGENT, HeaderValue::from_static("dialer-callbacks/1"))
        .header("X-Signature", &signature.x_signature)
        .header("webhook-id", &signature.webhook_id)
        .header("webhook-timestamp", &signature.webhook_timestamp)
        .header("webhook-signature", &signature.webhook_signature)
        .body(body);
    let mut response = match request.send().await {
        Ok(r) => r,
        Err(e) => {
            return AttemptReport {
                status_code: None,
                error: Some(describe(e)),
                latency: started.elapsed(),
                response_head: None,
            };
        }
    };
    let status = response.status().as_u16();
    let mut head = Vec::new();
    let mut error = None;
    while head.len() < RESPONSE_HEAD_BYTES {
        match response.chunk().await {
            Ok(Some(chunk)) => {
                let room = RESPONSE_HEAD_BYTES - head.len();
                head.extend_from_slice(&chunk[..chunk.len().min(room)]);
            }
            Ok(None) => break,
            Err(e) => {
                // A body cut short after a 2xx status still leaves the outcome in doubt.
                error = Some(describe(e));
                break;
            }
        }
    }
    AttemptReport {
        status_code: Some(status),
        error,
        latency: started.elapsed(),
        response_head: (!head.is_empty()).then(|| printable(&head)),
    }
}

/// PostgreSQL text cannot hold NUL; the head is for humans anyway.
fn printable(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).replace('\0', "\u{FFFD}")
}

/// The error and its causes, without the URL (it may carry a client's token).
fn describe(e: reqwest::Error) -> String {
    let kind = if e.is_timeout() {
        "timeout"
    } else if e.is_connect() {
        "connect"
    } else if e.is_body() || e.is_decode() {
        "response body"
    } else {
        "request"
    };
    format!("{kind}: {}", error_chain(&e.without_url()))
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let s_text = s.to_string();
        if !text.contains(&s_text) {
            text.push_str(": ");
            text.push_str(&s_text);
        }
        source = s.source();
    }
    text
}
