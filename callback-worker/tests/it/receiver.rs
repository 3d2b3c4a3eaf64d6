//! A real HTTP(S) receiver on loopback that checks both signatures with its own HMAC code (not
//! the worker's), the way a client would, and records what it was sent.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU8, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use bytes::Bytes;
use hmac::{Hmac, KeyInit, Mac};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use sha2::Sha256;
use tokio::net::TcpListener;

pub const MODE_OK: u8 = 0;
pub const MODE_FAIL: u8 = 1;
pub const MODE_HANG: u8 = 2;
/// 302 to another path of the same receiver.
pub const MODE_REDIRECT: u8 = 3;
/// 200 with a 5,000-byte body.
pub const MODE_BIG: u8 = 4;

#[derive(Debug, Clone)]
pub struct Received {
    pub event_id: String,
    pub call_id: Option<String>,
    pub sequence: Option<i64>,
    /// Which known secret matched `X-Signature` (index), if any.
    pub x_signature_secret: Option<usize>,
    /// Which known secrets matched an entry of `webhook-signature`.
    pub webhook_secrets: Vec<usize>,
    pub webhook_entries: usize,
    pub status: u16,
}

pub struct ReceiverState {
    /// Secrets the client knows (`whsec_...`).
    pub secrets: Vec<String>,
    pub mode: AtomicU8,
    pub delay_ms: AtomicU64,
    pub received: Mutex<Vec<Received>>,
    pub requests: AtomicU64,
}

impl ReceiverState {
    pub fn new(secrets: Vec<String>) -> Arc<ReceiverState> {
        Arc::new(ReceiverState {
            secrets,
            mode: AtomicU8::new(MODE_OK),
            delay_ms: AtomicU64::new(0),
            received: Mutex::new(Vec::new()),
            requests: AtomicU64::new(0),
        })
    }

    pub fn set_mode(&self, mode: u8) {
        self.mode.store(mode, Ordering::SeqCst);
    }

    pub fn received(&self) -> Vec<Received> {
        self.received.lock().expect("receiver lock").clone()
    }

    /// Events answered 2xx, in the order they were answered.
    pub fn accepted(&self) -> Vec<Received> {
        self.received()
            .into_iter()
            .filter(|r| r.status == 200)
            .collect()
    }
}

type HmacSha256 = Hmac<Sha256>;

fn hmac(key: &[u8], parts: &[&[u8]]) -> Vec<u8> {
    let mut mac = HmacSha256::new_from_slice(key).expect("hmac key");
    for p in parts {
        mac.update(p);
    }
    mac.finalize().into_bytes().to_vec()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The checks a client makes. Returns (x_signature match, webhook matches, entries, ts ok).
pub fn verify(
    secrets: &[String],
    body: &[u8],
    x_signature: &str,
    webhook_id: &str,
    webhook_timestamp: &str,
    webhook_signature: &str,
) -> (Option<usize>, Vec<usize>, usize, bool) {
    let x = secrets
        .iter()
        .position(|s| hex(&hmac(s.as_bytes(), &[body])) == x_signature);
    let entries: Vec<&str> = webhook_signature.split(' ').collect();
    let mut matched = Vec::new();
    for (i, s) in secrets.iter().enumerate() {
        let key = STANDARD
            .decode(s.strip_prefix("whsec_").expect("whsec_ secret"))
            .expect("base64 secret");
        let expected = format!(
            "v1,{}",
            STANDARD.encode(hmac(
                &key,
                &[
                    webhook_id.as_bytes(),
                    b".",
                    webhook_timestamp.as_bytes(),
                    b".",
                    body
                ]
            ))
        );
        if entries.contains(&expected.as_str()) {
            matched.push(i);
        }
    }
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs() as i64;
    let ts_ok = webhook_timestamp
        .parse::<i64>()
        .is_ok_and(|ts| (now - ts).abs() <= 300);
    (x, matched, entries.len(), ts_ok)
}

async fn handle(
    state: Arc<ReceiverState>,
    req: Request<Incoming>,
) -> Result<Response<Full<Bytes>>, hyper::Error> {
    state.requests.fetch_add(1, Ordering::SeqCst);
    let header = |name: &str| {
        req.headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_owned()
    };
    let (xs, wid, wts, wsig) = (
        header("x-signature"),
        header("webhook-id"),
        header("webhook-timestamp"),
        header("webhook-signature"),
    );
    let body = req.into_body().collect().await?.to_bytes();
    let (x_match, wh_matches, entries, ts_ok) =
        verify(&state.secrets, &body, &xs, &wid, &wts, &wsig);
    let parsed: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
    let id_ok = parsed.get("event_id").and_then(|v| v.as_str()) == Some(wid.as_str());
    let mode = state.mode.load(Ordering::SeqCst);
    if mode == MODE_HANG {
        tokio::time::sleep(Duration::from_secs(120)).await;
    }
    let delay = state.delay_ms.load(Ordering::SeqCst);
    if delay > 0 {
        tokio::time::sleep(Duration::from_millis(delay)).await;
    }
    let status: u16 = if x_match.is_none() || wh_matches.is_empty() || !ts_ok || !id_ok {
        401
    } else if mode == MODE_FAIL {
        503
    } else {
        200
    };
    let (status, text) = match (status, mode) {
        (200, MODE_REDIRECT) => (302, "moved".to_owned()),
        (200, MODE_BIG) => (200, "y".repeat(5000)),
        (200, _) => (200, "ok".to_owned()),
        (s, _) => (s, format!("status {s}")),
    };
    state
        .received
        .lock()
        .expect("receiver lock")
        .push(Received {
            event_id: wid,
            call_id: parsed
                .get("call_id")
                .and_then(|v| v.as_str())
                .map(str::to_owned),
            sequence: parsed.get("sequence").and_then(|v| v.as_i64()),
            x_signature_secret: x_match,
            webhook_secrets: wh_matches,
            webhook_entries: entries,
            status,
        });
    let mut resp = Response::new(Full::new(Bytes::from(text)));
    *resp.status_mut() = hyper::StatusCode::from_u16(status).expect("status");
    if status == 302 {
        resp.headers_mut().insert(
            hyper::header::LOCATION,
            hyper::header::HeaderValue::from_static("/elsewhere"),
        );
    }
    Ok(resp)
}

/// Starts a plain HTTP receiver; with `tls`, an HTTPS one with that server config.
pub async fn start(
    state: Arc<ReceiverState>,
    tls: Option<Arc<rustls::ServerConfig>>,
) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let acceptor = tls.map(tokio_rustls::TlsAcceptor::from);
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                return;
            };
            let state = state.clone();
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                let service = service_fn(move |req| handle(state.clone(), req));
                let http = hyper::server::conn::http1::Builder::new();
                match acceptor {
                    None => {
                        let _ = http.serve_connection(TokioIo::new(stream), service).await;
                    }
                    Some(acceptor) => {
                        if let Ok(tls) = acceptor.accept(stream).await {
                            let _ = http.serve_connection(TokioIo::new(tls), service).await;
                        }
                    }
                }
            });
        }
    });
    addr
}
