//! Taking back what a previous run or a dead dispatcher left: attempts of this dispatcher's
//! previous run (released at start), orphaned attempts on the servers we hold (followed again
//! or ended as `unknown`), and calls whose due time came (given their job again). The writes
//! are the state module's.

use std::time::Instant;

use diesel::QueryableByName;
use diesel::sql_types::{Array, BigInt, Double, Integer, Text, Uuid as SqlUuid};
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use tokio::sync::mpsc;
use tracing::{info, warn};
use uuid::Uuid;

use dialer_core::db::{self, DbPool};
use dialer_core::dial_outbox;
use dialer_core::domain::{AttemptState, Disposition};
use dialer_core::topology::Topology;

use crate::config::DispatcherConfig;
use crate::outcome::{AttemptTracker, Outcome};
use crate::registry::{LiveAttempt, Registry};
use crate::server::Servers;
use crate::state::{self, StateError, Transition};
use dialer_core::prepared::PrepareOnce;

/// Restarted under the same id (a fixed `DIALER_DISPATCHER_ID`): attempts still carrying it
/// belong to the previous process, which nobody follows now. Unmarked, they are orphans like a
/// dead dispatcher's, adopted or settled by the sweeper. Done before this process claims
/// anything, so none of its own are touched.
pub async fn release_previous_run(
    conn: &mut AsyncPgConnection,
    dispatcher_id: &str,
) -> Result<(), StateError> {
    let released = state::release_attempts_of(conn, dispatcher_id).await?;
    if released > 0 {
        info!(
            attempts = released,
            "calls of this dispatcher's previous run to settle"
        );
    }
    Ok(())
}

/// Calls whose due time came: retries get the job of their next attempt; calls parked for
/// calling hours get their job again. Each row is taken by one dispatcher only (the update's
/// condition), and the jobs go out through the dial outbox.
pub async fn release_due_calls(
    pool: &DbPool,
    channel: &lapin::Channel,
    topology: &Topology,
) -> anyhow::Result<()> {
    let mut conn = pool.get().await.map_err(db::DbError::from)?;
    let ids = state::release_due_calls(&mut conn).await?;
    drop(conn);
    if !ids.is_empty() {
        dial_outbox::publish_pending(pool, channel, topology, dial_outbox::Scope::Calls(&ids))
            .await?;
    }
    Ok(())
}

#[derive(QueryableByName)]
struct Orphan {
    #[diesel(sql_type = SqlUuid)]
    id: Uuid,
    #[diesel(sql_type = BigInt)]
    server_id: i64,
    #[diesel(sql_type = BigInt)]
    call_pk: i64,
    #[diesel(sql_type = BigInt)]
    account_id: i64,
    #[diesel(sql_type = Text)]
    state: AttemptState,
    #[diesel(sql_type = Integer)]
    ring_timeout_seconds: i32,
    #[diesel(sql_type = Integer)]
    max_call_seconds: i32,
}

/// Live attempts on the servers `held` whose dispatcher is gone (no heartbeat for `stale`
/// seconds), at most a thousand.
async fn find_orphans(
    pool: &DbPool,
    held: &[i64],
    dispatcher_id: &str,
    stale: f64,
) -> anyhow::Result<Vec<Orphan>> {
    let mut conn = pool.get().await.map_err(db::DbError::from)?;
    let orphans = diesel::sql_query(
        "SELECT t.id, t.server_id, t.call_pk, c.account_id, t.state, a.ring_timeout_seconds, \
                a.max_call_seconds \
         FROM call_attempts t JOIN calls c ON c.id = t.call_pk JOIN accounts a ON a.id = c.account_id \
         WHERE t.ended_at IS NULL AND t.server_id = ANY($1) \
           AND (t.dispatcher_id IS NULL OR t.dispatcher_id <> $2) \
           AND NOT EXISTS (SELECT 1 FROM dispatchers d WHERE d.id = t.dispatcher_id \
                           AND d.heartbeat_at > now() - make_interval(secs => $3)) \
         LIMIT 1000",
    )
    .bind::<Array<BigInt>, _>(held)
    .bind::<Text, _>(dispatcher_id)
    .bind::<Double, _>(stale)
    .prepared()
    .load(&mut conn)
    .await?;
    Ok(orphans)
}

/// Attempts on servers we hold whose dispatcher is gone (crashed, killed): never sent ones go
/// back to be dialed; sent ones are followed again when their channel is still up, else ended as
/// `unknown` (the person may have been reached, so they are never retried on their own).
pub async fn adopt_orphans(
    pool: &DbPool,
    config: &DispatcherConfig,
    registry: &Registry,
    servers: &Servers,
    transitions: &mpsc::UnboundedSender<Transition>,
) {
    let held: Vec<i64> = servers
        .lock()
        .map(|m| m.keys().copied().collect())
        .unwrap_or_default();
    if held.is_empty() {
        return;
    }
    let stale = config.lease_ttl.as_secs_f64().max(2.0);
    let orphans = match find_orphans(pool, &held, &config.id, stale).await {
        Ok(o) => o,
        Err(e) => {
            warn!(error = %e, "orphan query failed");
            return;
        }
    };
    for o in orphans {
        if registry.contains(&o.id) {
            continue;
        }
        // Claimed but never confirmed for sending: nobody was dialed. It goes back to be
        // dialed like a call not placed, instead of ending `unknown`.
        let Ok(mut conn) = pool.get().await else {
            return;
        };
        if let Ok(true) = state::adopt_unsent(&mut conn, o.id, &config.id).await {
            info!(attempt = %o.id, "a call claimed but never sent by a dispatcher that is gone; dialing it again");
            let _ = transitions.send(Transition::NotPlaced {
                attempt: o.id,
                due: chrono::Utc::now(),
            });
            continue;
        }
        drop(conn);
        let server = servers
            .lock()
            .ok()
            .and_then(|m| m.get(&o.server_id).cloned());
        let Some(server) = server.filter(|s| s.is_connected()) else {
            continue;
        };
        let live = server.live_channel(o.id).await;
        let Ok(mut conn) = pool.get().await else {
            return;
        };
        let _ = state::adopt_attempt(&mut conn, o.id, &config.id).await;
        match live {
            Some(answered) => {
                info!(attempt = %o.id, "following a call left by a dispatcher that is gone");
                let now = Instant::now();
                registry.insert(
                    o.id,
                    LiveAttempt {
                        // Sent by the dispatcher that is gone: guards and reconcile apply.
                        sent: Some(now),
                        answered: answered.then_some(now),
                        ..LiveAttempt::new(
                            o.call_pk,
                            o.account_id,
                            o.server_id,
                            AttemptTracker::adopted(o.id.to_string(), answered),
                            o.ring_timeout_seconds,
                            o.max_call_seconds,
                        )
                    },
                );
                if answered && o.state != AttemptState::Answered {
                    let _ = transitions.send(Transition::Answered {
                        attempt: o.id,
                        at: chrono::Utc::now(),
                    });
                }
            }
            None => {
                let _ = transitions.send(Transition::Ended {
                    attempt: o.id,
                    outcome: Outcome {
                        disposition: Disposition::Unknown,
                        cause: None,
                        error_message: Some(
                            "the dispatcher following this call stopped; its outcome is unknown"
                                .into(),
                        ),
                    },
                    cut_by_platform: false,
                    at: chrono::Utc::now(),
                });
            }
        }
    }
}
