//! `GET /console/live`: the live snapshot as server-sent events, one `data:` line of JSON each
//! time the process's shared snapshot changes (every two seconds or so), a comment now and then
//! to keep proxies from closing a quiet stream. The stream ends when its session does (expired,
//! signed out, operator revoked: checked every [`RECHECK`]) or when the process stops; the
//! page's `EventSource` then reconnects, and a request without a session is refused, which the
//! page takes as "sign in again".

use std::convert::Infallible;
use std::time::{Duration, Instant};

use actix_web::http::header;
use actix_web::{HttpResponse, web};
use bytes::Bytes;
use chrono::{DateTime, Utc};
use tokio::sync::watch;

use dialer_core::db::DbPool;

use crate::console::hub::Latest;
use crate::console::session::{self, Session};
use crate::state::AppState;

const RECHECK: Duration = Duration::from_secs(30);
const KEEPALIVE: Duration = Duration::from_secs(15);

struct LiveStream {
    latest: watch::Receiver<Latest>,
    closing: watch::Receiver<bool>,
    first: bool,
    pool: DbPool,
    session_id: i64,
    expires_at: DateTime<Utc>,
    next_check: Instant,
}

pub async fn live(state: web::Data<AppState>, session: Session) -> HttpResponse {
    let hub = &state.console.hub;
    let stream = LiveStream {
        latest: hub.subscribe(&state.pool),
        closing: hub.closing(),
        first: true,
        pool: state.auth_pool.clone(),
        session_id: session.id,
        expires_at: session.expires_at,
        next_check: Instant::now() + RECHECK,
    };
    HttpResponse::Ok()
        .content_type("text/event-stream")
        .insert_header((header::CACHE_CONTROL, "no-store"))
        // nginx would otherwise hold events back in its buffer.
        .insert_header(("X-Accel-Buffering", "no"))
        .streaming(futures_util::stream::unfold(stream, next))
}

enum Woke {
    Changed,
    Quiet,
    End,
}

fn event(json: &str) -> Bytes {
    Bytes::from(format!("data: {json}\n\n"))
}

async fn next(mut s: LiveStream) -> Option<(Result<Bytes, Infallible>, LiveStream)> {
    if s.first {
        s.first = false;
        let latest = s.latest.borrow_and_update().clone();
        // The reconnection delay the browser uses, then the snapshot at once if there is one.
        let head = match latest {
            Some(json) => format!("retry: 2000\ndata: {json}\n\n"),
            None => "retry: 2000\n\n".to_owned(),
        };
        return Some((Ok(Bytes::from(head)), s));
    }
    loop {
        if Instant::now() >= s.next_check {
            // A database that does not answer does not cut the operator off.
            let live = session::still_live(&s.pool, s.session_id)
                .await
                .unwrap_or(true);
            if !live || Utc::now() >= s.expires_at {
                return None;
            }
            s.next_check = Instant::now() + RECHECK;
        }
        let wait = KEEPALIVE.min(s.next_check.saturating_duration_since(Instant::now()));
        let woke = tokio::select! {
            changed = s.latest.changed() => match changed {
                Ok(()) => Woke::Changed,
                Err(_) => Woke::End,
            },
            _ = s.closing.wait_for(|c| *c) => Woke::End,
            _ = tokio::time::sleep(wait) => Woke::Quiet,
        };
        match woke {
            Woke::End => return None,
            Woke::Changed => {
                let latest = s.latest.borrow_and_update().clone();
                if let Some(json) = latest {
                    return Some((Ok(event(&json)), s));
                }
            }
            Woke::Quiet if Instant::now() < s.next_check => {
                return Some((Ok(Bytes::from_static(b": keep-alive\n\n")), s));
            }
            Woke::Quiet => {}
        }
    }
}
