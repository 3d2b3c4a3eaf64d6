//! The last check before an Originate: a claimed attempt is confirmed in PostgreSQL [`LEAD`]
//! before the moment it leaves, once every pace it waits for has been taken
//! ([`crate::state::confirm_sends`]), so a pause or a cancel answered while it waited stops it
//! (they take back unconfirmed attempts; whichever commits first wins), and so does its batch's
//! `expires_at`. An attempt confirmed before the pause committed still leaves at its moment, at
//! most [`LEAD`] + [`WINDOW`] after the pause was answered.
//!
//! Attempts share statements: each asks [`WINDOW`] before it must be confirmed, and a group is
//! sent when the first of its attempts must be (or at once if one is already due), with all
//! that asked meanwhile. Statements are at least [`MIN_GAP`] apart. No call waits longer than
//! it did with one statement per call; at 50 calls/s a statement confirms about three, at
//! 200/s about ten (each statement is a transaction: issue 13).

use std::collections::HashSet;
use std::time::{Duration, Instant};

use tokio::sync::{mpsc, oneshot};
use tracing::warn;
use uuid::Uuid;

use dialer_core::db::DbPool;

use crate::state;

/// How long before its slot an attempt is confirmed: longer than a confirmation usually takes,
/// so the call leaves at its slot (the rate holds in every second, across dispatchers), short
/// enough that a pause stops everything but what was about to leave.
pub const LEAD: Duration = Duration::from_millis(100);

/// How long before it must be confirmed an attempt asks, for the attempts asking after it to
/// share its statement.
pub const WINDOW: Duration = Duration::from_millis(50);

/// Least time between two confirmations.
const MIN_GAP: Duration = Duration::from_millis(5);
/// Wait before trying again when the database did not answer.
const RETRY_AFTER: Duration = Duration::from_millis(200);

/// An attempt, when it must be confirmed at the latest, and where the answer goes.
type Request = (Uuid, Instant, oneshot::Sender<bool>);

/// Cheap to clone; the confirming task runs while any clone lives.
#[derive(Clone)]
pub struct SendGate {
    requests: mpsc::UnboundedSender<Request>,
}

impl SendGate {
    /// Confirms attempts of `dispatcher_id` (this process's).
    pub fn start(pool: DbPool, dispatcher_id: String) -> SendGate {
        let (requests, rx) = mpsc::unbounded_channel();
        tokio::spawn(confirm_loop(pool, dispatcher_id, rx));
        SendGate { requests }
    }

    /// Whether the claimed `attempt` may be sent (confirmed), or was taken back (never to be
    /// sent). The statement that confirms it is sent by `by` at the latest.
    pub async fn confirm(&self, attempt: Uuid, by: Instant) -> bool {
        let (reply, answer) = oneshot::channel();
        if self.requests.send((attempt, by, reply)).is_err() {
            return false;
        }
        answer.await.unwrap_or(false)
    }
}

async fn confirm_loop(
    pool: DbPool,
    dispatcher_id: String,
    mut rx: mpsc::UnboundedReceiver<Request>,
) {
    let mut last: Option<Instant> = None;
    while let Some(first) = rx.recv().await {
        if let Some(last) = last {
            tokio::time::sleep_until((last + MIN_GAP).into()).await;
        }
        let mut send_by = first.1;
        let mut group = vec![first];
        loop {
            let more = match rx.try_recv() {
                Ok(more) => more,
                Err(_) if Instant::now() >= send_by => break,
                Err(_) => match tokio::time::timeout_at(send_by.into(), rx.recv()).await {
                    Ok(Some(more)) => more,
                    // Time to send, or no one is left to ask.
                    _ => break,
                },
            };
            send_by = send_by.min(more.1);
            group.push(more);
        }
        last = Some(Instant::now());
        let ids: Vec<Uuid> = group.iter().map(|(id, _, _)| *id).collect();
        let confirmed = confirm(&pool, &ids, &dispatcher_id).await;
        for (id, _, reply) in group {
            let _ = reply.send(confirmed.contains(&id));
        }
    }
}

/// Confirms `ids`, trying again until the database answers: an attempt is never sent
/// unconfirmed, and one not answered for stays claimed (a pause still takes it back). Calls
/// held back by an outage leave together when it ends: at most the second or so of each
/// account's calls the scheduler claims ahead.
async fn confirm(pool: &DbPool, ids: &[Uuid], dispatcher_id: &str) -> HashSet<Uuid> {
    loop {
        let result = match pool.get().await {
            Ok(mut conn) => state::confirm_sends(&mut conn, ids, dispatcher_id)
                .await
                .map_err(|e| e.to_string()),
            Err(e) => Err(e.to_string()),
        };
        match result {
            Ok(sent) => return sent.into_iter().collect(),
            Err(e) => {
                warn!(error = %e, attempts = ids.len(), "cannot confirm Originates; retrying");
                tokio::time::sleep(RETRY_AFTER).await;
            }
        }
    }
}
