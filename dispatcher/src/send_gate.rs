//! The last check before an Originate: a claimed attempt is confirmed in PostgreSQL [`LEAD`]
//! before the moment it leaves, once every pace it waits for has been taken
//! ([`crate::state::confirm_sends`]), so a pause or a cancel answered while it waited stops it
//! (they take back unconfirmed attempts; whichever commits first wins), and so does its batch's
//! `expires_at`. An attempt confirmed before the pause committed still leaves at its moment, at
//! most [`LEAD`] after the pause was answered.
//!
//! Attempts whose slots come together share one statement: a group is confirmed as soon as the
//! previous one returned, but statements are at least [`MIN_GAP`] apart. Below 200 calls per
//! second each call goes alone and is not delayed beyond one round trip; above, a call waits at
//! most that gap, and there are never more than 200 statements a second whatever the rate.

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

/// Least time between two confirmations.
const MIN_GAP: Duration = Duration::from_millis(5);
/// Wait before trying again when the database did not answer.
const RETRY_AFTER: Duration = Duration::from_millis(200);

type Request = (Uuid, oneshot::Sender<bool>);

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

    /// Whether the claimed `attempt` may be sent now (confirmed), or was taken back (never to
    /// be sent).
    pub async fn confirm(&self, attempt: Uuid) -> bool {
        let (reply, answer) = oneshot::channel();
        if self.requests.send((attempt, reply)).is_err() {
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
        let mut group = vec![first];
        while let Ok(more) = rx.try_recv() {
            group.push(more);
        }
        last = Some(Instant::now());
        let ids: Vec<Uuid> = group.iter().map(|(id, _)| *id).collect();
        let confirmed = confirm(&pool, &ids, &dispatcher_id).await;
        for (id, reply) in group {
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
