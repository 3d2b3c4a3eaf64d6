//! Shared setup of the integration tests: a test database and queue prefix (dialer-core's
//! TestEnv), accounts and events written the way the platform writes them, the engine in
//! process, and waiting on the database.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use callback_worker::schedule::RetrySchedule;
use callback_worker::{Engine, WorkerConfig};
use dialer_core::db::{self, DbPool};
use dialer_core::domain::DeliveryStatus;
use dialer_core::test_support::TestEnv;
use diesel::sql_types::{BigInt, Bool, Integer, Nullable, Text};
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use tokio::sync::watch;

use crate::receiver::{self, ReceiverState};

#[derive(diesel::QueryableByName)]
struct Id {
    #[diesel(sql_type = BigInt)]
    id: i64,
}

#[derive(diesel::QueryableByName)]
struct EventId {
    #[diesel(sql_type = Text)]
    event_id: String,
}

#[derive(diesel::QueryableByName)]
struct Count {
    #[diesel(sql_type = BigInt)]
    n: i64,
}

/// Events whose delivery has ended one way or another (for [`Harness::wait_count`]).
pub const SETTLED: &str =
    "SELECT count(*) AS n FROM call_events WHERE delivery_status <> 'pending'";

/// Counts the events in `status` (for [`Harness::wait_count`]).
pub fn events_in(status: DeliveryStatus) -> String {
    format!("SELECT count(*) AS n FROM call_events WHERE delivery_status = '{status}'")
}

/// Counts the events of `account` in `status`.
pub fn account_events_in(account: i64, status: DeliveryStatus) -> String {
    format!(
        "SELECT count(*) AS n FROM call_events WHERE account_id = {account} AND delivery_status = '{status}'"
    )
}

/// A receiving endpoint: a fresh secret, a receiver on loopback that knows it, and an account
/// whose callbacks go there.
pub struct Endpoint {
    pub secret: String,
    pub state: Arc<ReceiverState>,
    pub addr: SocketAddr,
    pub account: i64,
}

pub struct Harness {
    pub env: TestEnv,
    pub pool: DbPool,
}

impl Harness {
    pub async fn new() -> Harness {
        let env = TestEnv::new().await;
        let pool = db::build_pool(&env.config, "callback-worker-test").expect("pool");
        Harness { env, pool }
    }

    pub async fn conn(&self) -> AsyncPgConnection {
        AsyncPgConnection::establish(&self.env.config.database_url)
            .await
            .expect("connect")
    }

    /// Test settings: loopback allowed, short schedule, quick polls.
    pub fn config(&self) -> WorkerConfig {
        let mut c = WorkerConfig::for_tests(self.env.config.clone());
        c.schedule = RetrySchedule::parse("200ms,200ms,200ms", 0.0).expect("schedule");
        c.core.callback_timeout = Duration::from_secs(5);
        c.lease = Duration::from_secs(30);
        c.circuit.failures_to_open = 1000;
        // Hanging receivers would otherwise hold every test's shutdown for the default grace.
        c.shutdown_grace = Duration::from_secs(2);
        c
    }

    /// Starts the engine in this process; dropping the handle does not stop it, `stop` does.
    pub fn start(&self, config: WorkerConfig) -> Running {
        let (tx, rx) = watch::channel(false);
        let engine = Engine::new(config, self.pool.clone());
        let task = tokio::spawn(engine.run(rx));
        Running { stop: tx, task }
    }

    /// An [`Endpoint`] whose receiver answers in `mode`, for a new account `code`.
    pub async fn endpoint(&self, code: &str, mode: u8) -> Endpoint {
        let secret = secret();
        let state = ReceiverState::new(vec![secret.clone()]);
        state.set_mode(mode);
        let addr = receiver::start(state.clone(), None).await;
        let account = self
            .account(code, &format!("http://{addr}/cb"), &secret, false, None)
            .await;
        Endpoint {
            secret,
            state,
            addr,
            account,
        }
    }

    /// The receiver and the account of a new [`Endpoint`].
    pub async fn receiving(&self, code: &str, mode: u8) -> (Arc<ReceiverState>, i64) {
        let e = self.endpoint(code, mode).await;
        (e.state, e.account)
    }

    pub async fn account(
        &self,
        code: &str,
        url: &str,
        secret: &str,
        batch_events: bool,
        ca_pem: Option<&str>,
    ) -> i64 {
        let mut conn = self.conn().await;
        let row: Id = diesel::sql_query(
            "INSERT INTO accounts (accountcode, callback_url, callback_secret, callback_batch_events, callback_ca_cert) \
             VALUES ($1, $2, $3, $4, $5) RETURNING id",
        )
        .bind::<Text, _>(code)
        .bind::<Text, _>(url)
        .bind::<Text, _>(secret)
        .bind::<Bool, _>(batch_events)
        .bind::<Nullable<Text>, _>(ca_pem)
        .get_result(&mut conn)
        .await
        .expect("insert account");
        row.id
    }

    /// A new batch with `calls` calls of `events_per_call` events each (sequence 1..n, in id
    /// order), bodies like the contract's. Returns the batch's primary key.
    pub async fn events(&self, account_id: i64, calls: i32, events_per_call: i32) -> i64 {
        let mut conn = self.conn().await;
        let batch: Id = diesel::sql_query(SEED_SQL)
            .bind::<BigInt, _>(account_id)
            .bind::<Integer, _>(calls)
            .bind::<Integer, _>(events_per_call)
            .get_result(&mut conn)
            .await
            .expect("insert a batch, its calls and events");
        batch.id
    }

    /// A `batch_completed` event of the batch.
    pub async fn batch_event(&self, batch_pk: i64) -> String {
        let mut conn = self.conn().await;
        let row: EventId = diesel::sql_query(
            "WITH e AS (SELECT 'evt_' || replace(gen_random_uuid()::text, '-', '') AS event_id) \
             INSERT INTO call_events (event_id, account_id, batch_pk, event_type, body) \
             SELECT e.event_id, b.account_id, b.id, 'batch_completed', \
                    json_build_object('event_id', e.event_id, 'event_type', 'batch_completed', \
                                      'batch_id', b.batch_id, 'total_calls', 0)::text \
             FROM e, batches b WHERE b.id = $1 RETURNING event_id",
        )
        .bind::<BigInt, _>(batch_pk)
        .get_result(&mut conn)
        .await
        .expect("insert batch event");
        row.event_id
    }

    /// Runs one statement on a connection of its own.
    pub async fn exec(&self, sql: &str) {
        let mut conn = self.conn().await;
        diesel::sql_query(sql)
            .execute(&mut conn)
            .await
            .unwrap_or_else(|e| panic!("{sql}: {e}"));
    }

    /// Writes `calls` calls of `per_call` events each for `account`, runs the engine with the
    /// test settings until `delivered` events (all told) are delivered, and stops it.
    pub async fn deliver(&self, account: i64, calls: i32, per_call: i32, delivered: i64) {
        self.events(account, calls, per_call).await;
        let run = self.start(self.config());
        self.wait_delivered(delivered, Duration::from_secs(30))
            .await;
        run.shutdown().await;
    }

    /// Runs the engine with no retries until `settled` events (all told) are no longer pending,
    /// and stops it.
    pub async fn settle_without_retries(&self, settled: i64) {
        let mut config = self.config();
        config.schedule = RetrySchedule::parse("", 0.0).expect("none");
        let run = self.start(config);
        self.wait_count(SETTLED, settled, Duration::from_secs(30))
            .await;
        run.shutdown().await;
    }

    /// [`Harness::wait_count`] of the delivered events.
    pub async fn wait_delivered(&self, want: i64, limit: Duration) -> Duration {
        self.wait_count(&events_in(DeliveryStatus::Delivered), want, limit)
            .await
    }

    pub async fn count(&self, sql: &str) -> i64 {
        let mut conn = self.conn().await;
        let row: Count = diesel::sql_query(sql)
            .get_result(&mut conn)
            .await
            .unwrap_or_else(|e| panic!("{sql}: {e}"));
        row.n
    }

    /// Waits until `sql` (a count) reaches `want`, or panics after `limit`.
    pub async fn wait_count(&self, sql: &str, want: i64, limit: Duration) -> Duration {
        let start = Instant::now();
        loop {
            let n = self.count(sql).await;
            if n >= want {
                return start.elapsed();
            }
            assert!(
                start.elapsed() < limit,
                "timed out after {limit:?}: `{sql}` is {n}, want {want}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

/// A batch of account `$1` with `$2` calls of `$3` events each, in one statement; returns the
/// batch's `id` (the rows of all the data-modifying parts are written whatever the last reads).
const SEED_SQL: &str = "\
WITH b AS (
    INSERT INTO batches (account_id, batch_id)
    VALUES ($1, (SELECT coalesce(max(batch_id), 0) + 1 FROM batches WHERE account_id = $1))
    RETURNING id
), c AS (
    INSERT INTO calls (account_id, batch_pk, phone_raw, phone_e164, event_seq, custom_data)
    SELECT $1, b.id, '98765' || lpad(g::text, 5, '0'), '+9198765' || lpad(g::text, 5, '0'), $3,
           '{\"customer_id\": \"C' || g || '\"}'
    FROM b, generate_series(1, $2) g
    RETURNING id, batch_pk, call_id, phone_raw, phone_e164, custom_data
), e AS (
    SELECT c.*, s, 'evt_' || replace(gen_random_uuid()::text, '-', '') AS event_id,
           CASE s WHEN 1 THEN 'call_started' WHEN 2 THEN 'call_answered' ELSE 'call_completed' END
               AS event_type
    FROM c, generate_series(1, $3) s
), written AS (
    INSERT INTO call_events (event_id, account_id, batch_pk, call_pk, sequence, event_type, body)
    SELECT event_id, $1, batch_pk, id, s, event_type,
           '{\"event_id\":\"' || event_id || '\",\"event_type\":\"' ||
           event_type || '\",\"accountcode\":\"T\",\"batch_id\":1,' ||
           '\"call_id\":\"' || call_id || '\",\"phone_number\":\"' || phone_raw ||
           '\",\"phone_number_e164\":\"' || phone_e164 || '\",\"custom_data\":' || custom_data ||
           ',\"sequence\":' || s || '}'
    FROM e ORDER BY id, s
)
SELECT id FROM b";

pub struct Running {
    pub stop: watch::Sender<bool>,
    pub task: tokio::task::JoinHandle<()>,
}

impl Running {
    pub async fn shutdown(self) {
        let _ = self.stop.send(true);
        let _ = tokio::time::timeout(Duration::from_secs(30), self.task).await;
    }
}

/// `whsec_` and 32 random bytes, generated by the test itself.
pub fn secret() -> String {
    use base64::Engine;
    let bytes: Vec<u8> = uuid::Uuid::new_v4()
        .as_bytes()
        .iter()
        .chain(uuid::Uuid::new_v4().as_bytes())
        .copied()
        .collect();
    format!(
        "whsec_{}",
        base64::engine::general_purpose::STANDARD.encode(bytes)
    )
}

/// Checks that every call's accepted events arrived in sequence order (first acceptance of
/// each event), and that every one of `expected` events was accepted.
pub fn assert_in_order_per_call(accepted: &[receiver::Received], expected: usize) {
    use std::collections::{HashMap, HashSet};
    let mut seen: HashSet<&str> = HashSet::new();
    let mut last: HashMap<&str, i64> = HashMap::new();
    for r in accepted {
        if !seen.insert(r.event_id.as_str()) {
            continue; // a duplicate (allowed)
        }
        if let (Some(call), Some(seq)) = (r.call_id.as_deref(), r.sequence) {
            let prev = last.insert(call, seq).unwrap_or(0);
            assert_eq!(
                seq,
                prev + 1,
                "call {call}: event {seq} arrived after {prev}"
            );
        }
    }
    assert_eq!(seen.len(), expected, "distinct events accepted");
}
