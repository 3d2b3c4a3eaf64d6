//! A client's callback receiver, as a client would write it from the contract: it verifies both
//! signatures of every callback with its own code (not the worker's), answers 401 to a bad one,
//! and records what arrived so a run can prove every event came, once or more, in order per call.
//! It can refuse everything (503) for a while, like a client endpoint that is down.

use std::collections::HashMap;
use std::net::TcpListener;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use actix_web::dev::ServerHandle;
use actix_web::{App, HttpRequest, HttpResponse, HttpServer, web};
use base64::Engine as _;
use chrono::{DateTime, Utc};
use hmac::{KeyInit, Mac};
use sha2::Sha256;

type HmacSha256 = hmac::Hmac<Sha256>;

/// Accepted distance between `webhook-timestamp` and now (Standard Webhooks suggests 5 min).
const TIMESTAMP_TOLERANCE_SECS: i64 = 300;

#[derive(Debug, Clone)]
pub struct ReceivedEvent {
    pub body: serde_json::Value,
    /// When its first verified delivery arrived.
    pub first_received: DateTime<Utc>,
    pub deliveries: u32,
}

/// What a receiver has seen so far.
#[derive(Debug, Clone, Default)]
pub struct Received {
    /// By `event_id`, verified deliveries only.
    pub events: HashMap<String, ReceivedEvent>,
    /// Verified deliveries, repeats included.
    pub deliveries: u64,
    /// Deliveries of an event already received (at least once delivery: allowed).
    pub duplicates: u64,
    /// Deliveries whose signature did not verify (answered 401).
    pub bad_signatures: u64,
    /// Deliveries refused with 503 while the receiver was "down".
    pub refused: u64,
    /// New events of a call that arrived after a later event of the same call.
    pub out_of_order: u64,
    highest_sequence: HashMap<String, i64>,
    /// First and last verified delivery.
    pub first_at: Option<Instant>,
    pub last_at: Option<Instant>,
}

impl Received {
    /// Events other than `batch_completed`.
    pub fn call_events(&self) -> impl Iterator<Item = &ReceivedEvent> {
        self.events
            .values()
            .filter(|e| e.body.get("call_id").is_some_and(|c| !c.is_null()))
    }
}

struct Shared {
    secret: String,
    /// Keep each event's body (tests read them); a long benchmark keeps only ids and order.
    keep_bodies: bool,
    refuse_until: Option<Instant>,
    received: Mutex<Received>,
}

pub struct Receiver {
    pub url: String,
    shared: Arc<Shared>,
    handle: ServerHandle,
}

impl Receiver {
    /// Listens on 127.0.0.1 (any free port); answers 503 to everything for `refuse_for`.
    pub fn start(secret: &str, refuse_for: Duration) -> std::io::Result<Receiver> {
        Receiver::start_keeping(secret, refuse_for, true)
    }

    /// As [`Receiver::start`], verifying and ordering every event as well, but keeping no
    /// body (`ReceivedEvent::body` is `null`): for runs of millions of events, whose bodies
    /// would take gigabytes.
    pub fn start_lean(secret: &str) -> std::io::Result<Receiver> {
        Receiver::start_keeping(secret, Duration::ZERO, false)
    }

    fn start_keeping(
        secret: &str,
        refuse_for: Duration,
        keep_bodies: bool,
    ) -> std::io::Result<Receiver> {
        let listener = TcpListener::bind("127.0.0.1:0")?;
        let port = listener.local_addr()?.port();
        let shared = Arc::new(Shared {
            secret: secret.to_owned(),
            keep_bodies,
            refuse_until: (!refuse_for.is_zero()).then(|| Instant::now() + refuse_for),
            received: Mutex::new(Received::default()),
        });
        let data = web::Data::from(shared.clone());
        let server = HttpServer::new(move || {
            App::new()
                .app_data(data.clone())
                .app_data(web::PayloadConfig::new(1 << 20))
                .default_service(web::to(receive))
        })
        .workers(1)
        // The devkit handles Ctrl-C itself and stops everything in order.
        .disable_signals()
        .listen(listener)?
        .run();
        let handle = server.handle();
        tokio::spawn(server);
        Ok(Receiver {
            url: format!("http://127.0.0.1:{port}/callbacks"),
            shared,
            handle,
        })
    }

    pub fn snapshot(&self) -> Received {
        self.shared
            .received
            .lock()
            .map(|r| r.clone())
            .unwrap_or_default()
    }

    /// Verified events received so far (cheaper than a snapshot).
    pub fn event_count(&self) -> usize {
        self.shared
            .received
            .lock()
            .map(|r| r.events.len())
            .unwrap_or(0)
    }

    pub async fn stop(self) {
        self.handle.stop(true).await;
    }
}

async fn receive(req: HttpRequest, body: web::Bytes, shared: web::Data<Shared>) -> HttpResponse {
    if shared.refuse_until.is_some_and(|t| Instant::now() < t) {
        if let Ok(mut r) = shared.received.lock() {
            r.refused += 1;
        }
        return HttpResponse::ServiceUnavailable().finish();
    }
    let now = Utc::now();
    let parsed = verify(&req, &body, &shared.secret, now.timestamp())
        .and_then(|()| serde_json::from_slice::<serde_json::Value>(&body).map_err(|_| "not JSON"));
    let Ok(mut r) = shared.received.lock() else {
        return HttpResponse::InternalServerError().finish();
    };
    let body = match parsed {
        Ok(b) => b,
        Err(reason) => {
            r.bad_signatures += 1;
            return HttpResponse::Unauthorized().body(reason);
        }
    };
    let event_id = body
        .get("event_id")
        .and_then(|v| v.as_str())
        .unwrap_or_default()
        .to_owned();
    let header_id = req
        .headers()
        .get("webhook-id")
        .and_then(|v| v.to_str().ok());
    if header_id != Some(event_id.as_str()) {
        r.bad_signatures += 1;
        return HttpResponse::Unauthorized().body("webhook-id is not the event_id");
    }
    let at = Instant::now();
    r.first_at.get_or_insert(at);
    r.last_at = Some(at);
    r.deliveries += 1;
    if let Some(seen) = r.events.get_mut(&event_id) {
        seen.deliveries += 1;
        r.duplicates += 1;
        return HttpResponse::Ok().finish();
    }
    if let (Some(call), Some(seq)) = (
        body.get("call_id").and_then(|v| v.as_str()),
        body.get("sequence").and_then(|v| v.as_i64()),
    ) {
        let highest = r.highest_sequence.entry(call.to_owned()).or_insert(0);
        if seq < *highest {
            r.out_of_order += 1;
        } else {
            *highest = seq;
        }
    }
    r.events.insert(
        event_id,
        ReceivedEvent {
            body: match shared.keep_bodies {
                true => body,
                false => serde_json::Value::Null,
            },
            first_received: now,
            deliveries: 1,
        },
    );
    HttpResponse::Ok().finish()
}

/// Both signatures of the contract, each over the exact body bytes.
fn verify(req: &HttpRequest, body: &[u8], secret: &str, now: i64) -> Result<(), &'static str> {
    let header = |name: &str| req.headers().get(name).and_then(|v| v.to_str().ok());
    // X-Signature: hex HMAC-SHA256 keyed with the secret's UTF-8 bytes.
    let given = header("x-signature").ok_or("no X-Signature")?;
    let given = decode_hex(given).ok_or("X-Signature is not hex")?;
    let mut mac = HmacSha256::new_from_slice(secret.as_bytes()).map_err(|_| "bad key")?;
    mac.update(body);
    mac.verify_slice(&given)
        .map_err(|_| "X-Signature does not match")?;

    // Standard Webhooks: v1,<base64> over "{id}.{timestamp}.{body}", key from the whsec_ secret.
    let id = header("webhook-id").ok_or("no webhook-id")?;
    let ts = header("webhook-timestamp").ok_or("no webhook-timestamp")?;
    let ts_num: i64 = ts
        .parse()
        .map_err(|_| "webhook-timestamp is not a number")?;
    if (now - ts_num).abs() > TIMESTAMP_TOLERANCE_SECS {
        return Err("webhook-timestamp too far from now");
    }
    let key = secret
        .strip_prefix("whsec_")
        .ok_or("secret is not whsec_")?;
    let key = base64::engine::general_purpose::STANDARD
        .decode(key)
        .map_err(|_| "secret is not base64")?;
    let signatures = header("webhook-signature").ok_or("no webhook-signature")?;
    let matches = signatures.split(' ').any(|s| {
        let Some(sig) = s.strip_prefix("v1,") else {
            return false;
        };
        let Ok(sig) = base64::engine::general_purpose::STANDARD.decode(sig) else {
            return false;
        };
        let Ok(mut mac) = HmacSha256::new_from_slice(&key) else {
            return false;
        };
        mac.update(id.as_bytes());
        mac.update(b".");
        mac.update(ts.as_bytes());
        mac.update(b".");
        mac.update(body);
        mac.verify_slice(&sig).is_ok()
    });
    if matches {
        Ok(())
    } else {
        Err("webhook-signature does not match")
    }
}

fn decode_hex(text: &str) -> Option<Vec<u8>> {
    if !text.len().is_multiple_of(2) {
        return None;
    }
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(text.get(i..i + 2)?, 16).ok())
        .collect()
}
