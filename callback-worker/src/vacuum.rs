//! Reclaiming the delivery queue's dead rows promptly. Every claim (the lease), retry and
//! settled event leaves a dead row version in `callback_queue` and a dead entry in its due
//! index, at the left where claims start; until vacuumed, claims walk them. The table holds
//! only pending events, so a `VACUUM` of it costs little, and one after each second in which
//! the worker changed the queue keeps the dead entries to about a second's worth, whatever the
//! rate or the history. Autovacuum, set aggressive for this table in its migration, is the
//! backup: a worker that may not vacuum the table (not its owner) says so once and goes on.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use diesel::sql_types::Bool;
use diesel_async::{RunQueryDsl, SimpleAsyncConnection};
use tokio::sync::watch;

use dialer_core::db::DbPool;

/// Set whenever this worker changed the queue; the vacuum task takes it.
#[derive(Default)]
pub struct Churn(AtomicBool);

impl Churn {
    pub fn mark(&self) {
        self.0.store(true, Ordering::Release);
    }

    fn take(&self) -> bool {
        self.0.swap(false, Ordering::AcqRel)
    }
}

/// Whether the connected role may vacuum `callback_queue` (PostgreSQL only warns otherwise).
const MAY_VACUUM_SQL: &str = "\
SELECT r.rolsuper OR pg_has_role(c.relowner, 'MEMBER') OR pg_has_role(d.datdba, 'MEMBER') AS may
FROM pg_class c, pg_roles r, pg_database d
WHERE c.oid = 'callback_queue'::regclass AND r.rolname = current_user
  AND d.datname = current_database()";

#[derive(diesel::QueryableByName)]
struct May {
    #[diesel(sql_type = Bool)]
    may: bool,
}

/// Vacuums the queue at most every `every` while `churn` says it changed, until `stop`.
pub async fn run(
    pool: DbPool,
    churn: std::sync::Arc<Churn>,
    every: Duration,
    mut stop: watch::Receiver<bool>,
) {
    if every.is_zero() {
        return;
    }
    let mut warned = false;
    let mut allowed: Option<bool> = None;
    loop {
        tokio::select! {
            _ = tokio::time::sleep(every) => {}
            _ = stop.wait_for(|s| *s) => return,
        }
        if !churn.take() {
            continue;
        }
        let result = async {
            let mut conn = pool.get().await?;
            if allowed.is_none() {
                let may: May = diesel::sql_query(MAY_VACUUM_SQL)
                    .get_result(&mut conn)
                    .await?;
                allowed = Some(may.may);
            }
            if allowed == Some(true) {
                // SKIP_LOCKED: another worker's (or autovacuum's) run is as good as ours.
                conn.batch_execute("VACUUM (SKIP_LOCKED) callback_queue")
                    .await?;
            }
            Ok::<(), crate::WorkerError>(())
        }
        .await;
        match (result, allowed) {
            (Ok(()), Some(false)) => {
                tracing::warn!(
                    "this role may not vacuum callback_queue (not its owner); autovacuum alone \
                     reclaims its dead rows, so claims may cost more at low rates"
                );
                return;
            }
            (Ok(()), _) => {}
            (Err(e), _) if !warned => {
                warned = true;
                tracing::warn!(error = %e, "vacuuming callback_queue failed; going on without it (logged once)");
            }
            (Err(_), _) => {}
        }
    }
}
