//! A world for dispatcher tests: a fresh database and queue prefix, simulated Asterisk servers
//! registered as servers, accounts and batches written as the API writes them, and dial jobs
//! published through the real outbox.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use ami_sim::{OutcomeKind, Rule, SimConfig, Simulator};
use dialer_core::dial_outbox;
use dialer_core::test_support::TestEnv;
use dialer_core::topology;
use diesel::QueryableByName;
use diesel::pg::Pg;
use diesel::sql_types::{BigInt, Integer, Nullable, Text};
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl, SimpleAsyncConnection};
use dispatcher::{Dispatcher, DispatcherConfig};

pub struct World {
    pub env: TestEnv,
    pub sims: Vec<Simulator>,
    /// Held open for `channel`.
    _amqp: lapin::Connection,
    pub channel: lapin::Channel,
    pub pool: dialer_core::db::DbPool,
}

/// `n` test numbers, `+15550000000` on.
pub fn numbers(n: usize) -> Vec<String> {
    (0..n).map(|i| format!("+1555{i:07}")).collect()
}

/// One server answering after 100 ms talk, a batch of 200 calls at 20 per second, a dispatcher
/// started and 30 calls dialed: a batch to pause mid-way. Returns the world, the batch and the
/// dispatcher.
pub async fn batch_under_way() -> (World, i64, Dispatcher) {
    let world = World::answering(1, 0, 100, 50, 200).await;
    let account = world.account("ACME", 20, 50, "").await;
    let (batch, d) = world.batch_and_dispatcher(account, 1, &numbers(200)).await;
    world.wait_originates(30, 30, 20, "never got going").await;
    (world, batch, d)
}

/// A final event of a call the platform lost sight of or ended itself: clear, never silent.
pub fn ended_clearly(event_type: &str) -> bool {
    matches!(
        event_type,
        "call_completed" | "call_timeout" | "call_failed"
    )
}

/// Polls `done` every `every` until it holds; fails with `what` once `within` has passed.
pub async fn wait_until(
    within: Duration,
    every: Duration,
    what: &str,
    mut done: impl FnMut() -> bool,
) {
    let deadline = Instant::now() + within;
    while !done() {
        assert!(Instant::now() < deadline, "{what}");
        tokio::time::sleep(every).await;
    }
}

#[derive(QueryableByName)]
struct N {
    #[diesel(sql_type = BigInt)]
    n: i64,
}

impl World {
    /// `servers` simulators answering every `+1555` number after `ring_ms` and hanging up after
    /// `talk_ms`, each registered with `max_channels` and `max_cps`.
    pub async fn answering(
        servers: usize,
        ring_ms: u64,
        talk_ms: u64,
        max_channels: i32,
        max_cps: i32,
    ) -> World {
        let rules = vec![Rule::timed(
            "+1555*",
            OutcomeKind::Answered,
            ring_ms,
            talk_ms,
        )];
        World::new(servers, rules, max_channels, max_cps).await
    }

    /// `servers` simulators with `rules`, each registered with `max_channels` and `max_cps`.
    pub async fn new(servers: usize, rules: Vec<Rule>, max_channels: i32, max_cps: i32) -> World {
        World::with_template(
            servers,
            rules,
            max_channels,
            max_cps,
            "PJSIP/{number}@trunk",
        )
        .await
    }

    pub async fn with_template(
        servers: usize,
        rules: Vec<Rule>,
        max_channels: i32,
        max_cps: i32,
        template: &str,
    ) -> World {
        let sim = SimConfig {
            rules,
            restart_downtime_ms: 100,
            shutdown_event_delay_ms: 50,
            ..SimConfig::default()
        };
        World::with_sims(servers, sim, max_channels, max_cps, template).await
    }

    /// `servers` simulators configured as `sim` (on a port of their own each).
    pub async fn with_sims(
        servers: usize,
        sim: SimConfig,
        max_channels: i32,
        max_cps: i32,
        template: &str,
    ) -> World {
        let mut sims = Vec::new();
        for _ in 0..servers {
            sims.push(
                Simulator::start(SimConfig {
                    listen: "127.0.0.1:0".parse().expect("addr"),
                    ..sim.clone()
                })
                .await
                .expect("simulator"),
            );
        }
        let ports: Vec<u16> = sims.iter().map(|s| s.addr().port()).collect();
        World::around(sims, &ports, max_channels, max_cps, template).await
    }

    /// A world around simulators already running, registered as servers on loopback `ports`
    /// (theirs, or a proxy's in front of them).
    pub async fn around(
        sims: Vec<Simulator>,
        ports: &[u16],
        max_channels: i32,
        max_cps: i32,
        template: &str,
    ) -> World {
        let env = TestEnv::new().await;
        let pool = dialer_core::db::build_pool(&env.config, "dispatcher-test").expect("pool");
        let amqp = topology::connect(&env.config.amqp_url, "dispatcher-test")
            .await
            .expect("amqp");
        let channel = topology::confirm_channel(&amqp).await.expect("channel");
        env.topology().declare(&channel).await.expect("topology");
        let world = World {
            env,
            sims,
            _amqp: amqp,
            channel,
            pool,
        };
        for (i, port) in ports.iter().enumerate() {
            world
                .exec(&format!(
                    "INSERT INTO asterisk_servers (code, host, port, username, secret, max_channels, \
                     max_cps, channel_template) VALUES ('ast{}', '127.0.0.1', {port}, 'dialer', 'dialer', \
                     {max_channels}, {max_cps}, '{template}')",
                    i + 1,
                ))
                .await;
        }
        world
    }

    pub async fn conn(&self) -> AsyncPgConnection {
        AsyncPgConnection::establish(&self.env.config.database_url)
            .await
            .expect("connect")
    }

    /// The `n` of a one-row query (`SELECT count(*) AS n ...`).
    pub async fn count(&self, sql: &str) -> i64 {
        let mut conn = self.conn().await;
        diesel::sql_query(sql)
            .get_result::<N>(&mut conn)
            .await
            .unwrap_or_else(|e| panic!("{sql}: {e}"))
            .n
    }

    /// Waits until `dispatcher-a` and `dispatcher-b` hold one server lease each (`leases`: an
    /// extra condition on the leases counted).
    pub async fn wait_servers_shared(&self, leases: &str) {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let held = |holder: &str| {
                format!("SELECT count(*) AS n FROM server_leases WHERE holder = '{holder}'{leases}")
            };
            let a_held = self.count(&held("dispatcher-a")).await;
            let b_held = self.count(&held("dispatcher-b")).await;
            if a_held == 1 && b_held == 1 {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "servers never shared ({a_held}, {b_held})"
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// Waits until the first simulator has received `n` Originates, polling every `every_ms`;
    /// fails with `what` after `within_secs`.
    pub async fn wait_originates(&self, n: u64, within_secs: u64, every_ms: u64, what: &str) {
        let (within, every) = (
            Duration::from_secs(within_secs),
            Duration::from_millis(every_ms),
        );
        wait_until(within, every, what, || {
            self.sims[0].stats().originates_total >= n
        })
        .await;
    }

    /// Sets `assignments` (SQL) on a batch row, as the API's controls do.
    pub async fn update_batch(&self, batch_pk: i64, assignments: &str) {
        self.exec(&format!(
            "UPDATE batches SET {assignments} WHERE id = {batch_pk}"
        ))
        .await;
    }

    /// What the API's pause or cancel does to a batch: the core's lifecycle under the batch's
    /// lock, in one transaction (see `dialer-api`'s `ops::batch_control`).
    pub async fn control_like_the_api(&self, batch_pk: i64, cancel: bool) {
        use dialer_core::lifecycle::control;
        #[derive(QueryableByName)]
        struct B {
            #[diesel(sql_type = BigInt)]
            account_id: i64,
        }
        let mut conn = self.conn().await;
        conn.transaction::<(), diesel::result::Error, _>(async |conn| {
            let b: B = diesel::sql_query("SELECT account_id FROM batches WHERE id = $1")
                .bind::<BigInt, _>(batch_pk)
                .get_result(conn)
                .await?;
            control::lock_account_claims(conn, b.account_id).await?;
            diesel::sql_query("SELECT id FROM batches WHERE id = $1 FOR UPDATE")
                .bind::<BigInt, _>(batch_pk)
                .execute(conn)
                .await?;
            if cancel {
                control::cancel(conn, batch_pk).await.map(|_| ())
            } else {
                control::pause(conn, batch_pk).await
            }
        })
        .await
        .expect("batch control");
    }

    /// `(event_type, attempt)` of each terminal event of a call (every event but
    /// `call_started` and `call_answered`), in sequence order.
    pub async fn terminal_attempts(&self, call_pk: i64) -> Vec<(String, i64)> {
        let events = self.events(call_pk).await;
        events
            .into_iter()
            .filter(|e| !matches!(e.event_type.as_str(), "call_started" | "call_answered"))
            .map(|e| {
                let body: serde_json::Value = serde_json::from_str(&e.body).expect("json body");
                (e.event_type, body["attempt"].as_i64().unwrap_or(-1))
            })
            .collect()
    }

    /// Both dispatchers of a two-dispatcher test took calls.
    pub async fn assert_two_dispatchers_dialed(&self) {
        let dialers = self
            .count("SELECT count(DISTINCT dispatcher_id) AS n FROM call_attempts")
            .await;
        assert_eq!(dialers, 2, "both dispatchers dialed");
    }

    /// A dispatcher in this process, with [`World::dispatcher_config`].
    pub async fn start(&self) -> Dispatcher {
        Dispatcher::start(self.dispatcher_config())
            .await
            .expect("start")
    }

    /// The dispatcher binary as its own process (to be killed), with id `id` (metrics served
    /// at `metrics_addr`, none when empty).
    pub fn spawn_dispatcher(&self, id: &str, lease_ttl_secs: &str, metrics_addr: &str) -> Child {
        let c = &self.env.config;
        Command::new(env!("CARGO_BIN_EXE_dispatcher"))
            .env("DATABASE_URL", &c.database_url)
            .env("AMQP_URL", &c.amqp_url)
            .env("DIALER_QUEUE_PREFIX", &c.queue_prefix)
            .env("DIALER_DISPATCHER_ID", id)
            .env("DIALER_LEASE_TTL_SECS", lease_ttl_secs)
            .env("RUST_LOG", "warn")
            .env("DIALER_DISPATCHER_METRICS_ADDR", metrics_addr)
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn the dispatcher binary")
    }

    pub async fn exec(&self, sql: &str) {
        self.conn()
            .await
            .batch_execute(sql)
            .await
            .unwrap_or_else(|e| panic!("{sql}: {e}"));
    }

    pub fn dispatcher_config(&self) -> DispatcherConfig {
        let mut c = DispatcherConfig::with_core(self.env.config.clone());
        c.lease_ttl = Duration::from_secs(4);
        c.shutdown_deadline = Duration::from_secs(5);
        // Jobs stay in the queue for a second dispatcher to take.
        c.prefetch = 20;
        c
    }

    /// An account with the given calls per second and channel limit; `extra` is SQL `SET`
    /// assignments for other settings (e.g. `max_attempts = 2`).
    pub async fn account(&self, code: &str, cps: i32, channels: i32, extra: &str) -> i64 {
        let mut conn = self.conn().await;
        let row: Id = diesel::sql_query(
            "INSERT INTO accounts (accountcode, callback_secret, calls_per_second, \
             max_concurrent_calls, ring_timeout_seconds, default_country, caller_id) \
             VALUES ($1, 'whsec_dGVzdA==', $2, $3, 2, 'US', '\"Dialer\" <5550100>') RETURNING id",
        )
        .bind::<Text, _>(code)
        .bind::<Integer, _>(cps)
        .bind::<Integer, _>(channels)
        .get_result(&mut conn)
        .await
        .expect("account");
        if !extra.is_empty() {
            self.exec(&format!(
                "UPDATE accounts SET {extra} WHERE id = {}",
                row.id
            ))
            .await;
        }
        row.id
    }

    /// A dispatched batch of `numbers` (E.164), with its dial jobs published.
    pub async fn batch(&self, account: i64, batch_id: i64, numbers: &[String]) -> i64 {
        let mut conn = self.conn().await;
        let batch: Id = diesel::sql_query(
            "INSERT INTO batches (account_id, batch_id, status, dispatched_at) \
             VALUES ($1, $2, 'dispatching', now()) RETURNING id",
        )
        .bind::<BigInt, _>(account)
        .bind::<BigInt, _>(batch_id)
        .get_result(&mut conn)
        .await
        .expect("batch");
        let phones: Vec<String> = numbers.to_vec();
        diesel::sql_query(
            "WITH c AS (INSERT INTO calls (account_id, batch_pk, phone_raw, phone_e164, phone_region, \
               custom_data, status, dispatched_at) \
               SELECT $1, $2, p, p, 'US', '{\"n\": ' || to_json(p)::text || '}', 'scheduled', now() \
               FROM unnest($3::text[]) AS p RETURNING id) \
             INSERT INTO dial_jobs (call_pk, attempt) SELECT id, 1 FROM c",
        )
        .bind::<BigInt, _>(account)
        .bind::<BigInt, _>(batch.id)
        .bind::<diesel::sql_types::Array<Text>, _>(&phones)
        .execute(&mut conn)
        .await
        .expect("calls");
        self.publish_jobs(batch.id).await;
        batch.id
    }

    /// [`World::batch`], then a dispatcher started on it: the batch and the dispatcher.
    pub async fn batch_and_dispatcher(
        &self,
        account: i64,
        batch_id: i64,
        numbers: &[String],
    ) -> (i64, Dispatcher) {
        let batch = self.batch(account, batch_id, numbers).await;
        (batch, self.start().await)
    }

    /// A batch of `numbers` dialed to the end by a dispatcher started on it: its calls, final
    /// within `timeout` (see [`World::wait_final`]), once the dispatcher is shut down.
    pub async fn dial_to_end(
        &self,
        account: i64,
        numbers: &[String],
        timeout: Duration,
    ) -> Vec<CallRow> {
        let batch = self.batch(account, 1, numbers).await;
        self.final_calls(batch, timeout).await
    }

    /// The one call of a batch of `number`, dialed to the end (see [`World::dial_to_end`]).
    pub async fn dial_one(&self, account: i64, number: &str, timeout: Duration) -> CallRow {
        let mut calls = self
            .dial_to_end(account, &[number.to_string()], timeout)
            .await;
        assert_eq!(calls.len(), 1, "one call");
        calls.remove(0)
    }

    /// A dispatcher started on what is there, until every call of `batch_pk` is final (see
    /// [`World::wait_final`]): the batch's calls, once the dispatcher is shut down.
    pub async fn final_calls(&self, batch_pk: i64, timeout: Duration) -> Vec<CallRow> {
        let d = self.start().await;
        let calls = self.wait_final(batch_pk, timeout).await;
        d.shutdown().await;
        calls
    }

    /// Waits until every call of the batch is final; panics with the states after `timeout`.
    pub async fn wait_final(&self, batch_pk: i64, timeout: Duration) -> Vec<CallRow> {
        let deadline = Instant::now() + timeout;
        loop {
            let rows = self.calls(batch_pk).await;
            let pending = rows
                .iter()
                .filter(|r| {
                    !matches!(
                        r.status.as_str(),
                        "completed"
                            | "busy"
                            | "no_answer"
                            | "failed"
                            | "timeout"
                            | "cancelled"
                            | "skipped"
                            | "expired"
                    )
                })
                .count();
            if pending == 0 {
                return rows;
            }
            if Instant::now() > deadline {
                let states: Vec<_> = rows.iter().map(|r| (&r.phone_raw, &r.status)).collect();
                panic!("{pending} calls not final after {timeout:?}: {states:?}");
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// Publishes the batch's dial jobs not published yet, through the real outbox.
    pub async fn publish_jobs(&self, batch_pk: i64) {
        let scope = dial_outbox::Scope::Batches(&[batch_pk]);
        dial_outbox::publish_pending(&self.pool, &self.channel, &self.env.topology(), scope)
            .await
            .expect("publish jobs");
    }

    /// The rows of `sql`, whose one parameter is `pk`.
    async fn rows<T: QueryableByName<Pg> + Send + 'static>(&self, sql: &str, pk: i64) -> Vec<T> {
        let mut conn = self.conn().await;
        diesel::sql_query(sql)
            .bind::<BigInt, _>(pk)
            .load(&mut conn)
            .await
            .unwrap_or_else(|e| panic!("{sql}: {e}"))
    }

    pub async fn calls(&self, batch_pk: i64) -> Vec<CallRow> {
        self.rows(
            "SELECT id, phone_raw, status, disposition, attempts FROM calls WHERE batch_pk = $1 ORDER BY id",
            batch_pk,
        )
        .await
    }

    /// The numbers of the batch's calls still `scheduled` (not dialed).
    pub async fn scheduled(&self, batch_pk: i64) -> Vec<String> {
        let calls = self.calls(batch_pk).await.into_iter();
        calls
            .filter(|c| c.status == "scheduled")
            .map(|c| c.phone_raw)
            .collect()
    }

    /// A call's last event.
    pub async fn last_event(&self, call_pk: i64) -> EventRow {
        self.events(call_pk).await.pop().expect("a final event")
    }

    /// The types of a call's events in sequence order.
    pub async fn event_types(&self, call_pk: i64) -> Vec<String> {
        let events = self.events(call_pk).await;
        events.into_iter().map(|e| e.event_type).collect()
    }

    /// `(event_type, sequence, body)` of a call's events in sequence order.
    pub async fn events(&self, call_pk: i64) -> Vec<EventRow> {
        self.rows(
            "SELECT event_type, sequence, body FROM call_events WHERE call_pk = $1 ORDER BY sequence",
            call_pk,
        )
        .await
    }
}

#[derive(QueryableByName)]
pub struct Id {
    #[diesel(sql_type = BigInt)]
    pub id: i64,
}

#[derive(Debug, QueryableByName)]
pub struct CallRow {
    #[diesel(sql_type = BigInt)]
    pub id: i64,
    #[diesel(sql_type = Text)]
    pub phone_raw: String,
    #[diesel(sql_type = Text)]
    pub status: String,
    #[diesel(sql_type = Nullable<Text>)]
    pub disposition: Option<String>,
    #[diesel(sql_type = Integer)]
    pub attempts: i32,
}

#[derive(Debug, QueryableByName)]
pub struct EventRow {
    #[diesel(sql_type = Text)]
    pub event_type: String,
    #[diesel(sql_type = Nullable<Integer>)]
    pub sequence: Option<i32>,
    #[diesel(sql_type = Text)]
    pub body: String,
}
