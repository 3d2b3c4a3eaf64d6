//! One fault run: the platform on a PostgreSQL of its own, two simulated servers, an account
//! whose receiver verifies every callback, a batch dialed while the test breaks something; then
//! what must hold after any fault: nothing lost, nothing dialed twice, nothing stuck.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::time::{Duration, Instant};

use diesel::sql_types::{BigInt, Text};
use diesel_async::RunQueryDsl;
use serde_json::{Value, json};

use dialer_api::ops::accounts::AccountUpdate;
use dialer_api::ops::accounts::CreatedAccount;
use dialer_core::Config;
use dialer_core::db::{self, DbPool};
use dialer_core::domain::{CallStatus, EventType};
use dialer_devkit::api_client::ApiClient;
use dialer_devkit::pg_instance::PgInstance;
use dialer_devkit::platform::{self, Processes, RunningServices, Scale, ServiceEnv, SimSpec};
use dialer_devkit::rabbit_cluster::RabbitCluster;
use dialer_devkit::rabbit_node::RabbitNode;
use dialer_devkit::receiver::Receiver;
use dialer_devkit::seed;

use crate::helpers::binaries;

/// The account's client batch id of [`FaultRun::submit`]; later batches count up from it.
pub const BATCH: i64 = 901;

/// What a run stands on of its own (else the machine's shared services, in a database and
/// queue prefix of its own).
#[derive(Debug, Clone, Copy, Default)]
pub struct Own {
    pub postgres: bool,
    pub broker: OwnBroker,
}

/// The RabbitMQ a run uses.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum OwnBroker {
    /// The machine's, with queues of the run's own prefix.
    #[default]
    Shared,
    /// One node of the run's own.
    Node,
    /// A cluster of three nodes of the run's own; services get every node's address.
    Cluster,
}

enum Broker {
    Node(Box<RabbitNode>),
    Cluster(RabbitCluster),
}

/// A run's shape beyond what it owns: how many of each service, how many accounts and their
/// settings, and more environment for the services.
pub struct Spec {
    pub own: Own,
    pub scale: Scale,
    pub accounts: usize,
    pub settings: AccountUpdate,
    pub env: Vec<(String, String)>,
}

impl Spec {
    /// One of each service, one account dialing 10 calls/s with 60 channels.
    pub fn of(own: Own) -> Spec {
        Spec {
            own,
            scale: Scale::ONE,
            accounts: 1,
            settings: AccountUpdate {
                ring_timeout_seconds: Some(4),
                calls_per_second: Some(10),
                max_concurrent_calls: Some(60),
                ..AccountUpdate::default()
            },
            env: Vec::new(),
        }
    }
}

/// An account of the run and its verifying receiver.
pub struct Tenant {
    pub account: CreatedAccount,
    pub receiver: Receiver,
}

pub struct FaultRun {
    pg: Option<PgInstance>,
    broker: Option<Broker>,
    /// The database on the shared server, dropped at the end (none with an own PostgreSQL).
    shared_database: Option<(String, String)>,
    pub pool: DbPool,
    pub processes: Processes,
    pub services: RunningServices,
    pub sims: Vec<platform::RunningSim>,
    pub tenants: Vec<Tenant>,
    pub amqp_url: String,
    pub prefix: String,
    /// Batches submitted (tenant, client batch id), and how many numbers they hold together.
    batches: Vec<(usize, i64)>,
    numbers: usize,
}

/// The account dials 10 calls/s, so a batch of 120 is still being dialed 10 s in.
///
/// ami-sim: rings 300 ms, talks 2.5 s, outcomes by the last digit (answered, busy, no answer,
/// failures; see its README), so calls are up when the fault comes.
fn sim_config(dir: &std::path::Path) -> std::path::PathBuf {
    let path = dir.join("fault-sim.toml");
    std::fs::write(&path, "ring_ms = 300\ntalk_ms = 2500\n").expect("sim config");
    path
}

impl FaultRun {
    /// Everything up, nothing submitted yet: one of each service, one account.
    pub async fn start(name: &str, own: Own) -> FaultRun {
        FaultRun::start_spec(name, Spec::of(own)).await
    }

    /// Everything `spec` asks for up, nothing submitted yet.
    pub async fn start_spec(name: &str, spec: Spec) -> FaultRun {
        let own = spec.own;
        let mut config = Config::from_env().expect("configuration");
        let prefix = format!("f{}", &uuid::Uuid::new_v4().simple().to_string()[..16]);
        let pg = match own.postgres {
            true => Some(
                PgInstance::start()
                    .await
                    .expect("a PostgreSQL of the test's own"),
            ),
            false => None,
        };
        let (server_url, database) = match &pg {
            Some(pg) => (pg.url("postgres"), "dialer_faults".to_owned()),
            None => (config.database_url.clone(), format!("dialer_{prefix}")),
        };
        let database_url = platform::fresh_database(&server_url, &database)
            .await
            .expect("database");
        let shared_database = pg.is_none().then_some((server_url, database));
        let broker = match own.broker {
            OwnBroker::Shared => None,
            OwnBroker::Node => Some(Broker::Node(Box::new(
                RabbitNode::start()
                    .await
                    .expect("a RabbitMQ node of the test's own"),
            ))),
            OwnBroker::Cluster => Some(Broker::Cluster(
                RabbitCluster::start(3)
                    .await
                    .expect("a RabbitMQ cluster of the test's own"),
            )),
        };
        match &broker {
            Some(Broker::Node(node)) => config.amqp_url = node.url(),
            Some(Broker::Cluster(cluster)) => config.amqp_url = cluster.urls(),
            None => {}
        }
        config.database_url = database_url.clone();
        config.db_pool_size = 2;
        let pool = db::build_pool(&config, "fault-test").expect("pool");
        let bins = binaries();
        let logs = std::env::temp_dir().join(format!("dialer-fault-{name}-{prefix}"));
        let mut processes = Processes::new(&logs).expect("log dir");
        let sims = platform::start_sims(
            &bins,
            &mut processes,
            &SimSpec::two(Some(sim_config(&logs)), false),
        )
        .await
        .expect("simulators");
        seed::servers(&pool, &sims, 60, 50).await.expect("servers");
        let mut accounts = Vec::new();
        for i in 0..spec.accounts.max(1) {
            let code = match i {
                0 => "FAULTS".to_owned(),
                _ => format!("FAULTS{}", i + 1),
            };
            accounts.push(
                seed::account_with_receiver(
                    &pool,
                    &code,
                    "US",
                    spec.settings.clone(),
                    Duration::ZERO,
                )
                .await
                .expect("account"),
            );
        }
        let mut extra = vec![
            ("DIALER_DB_POOL_SIZE".into(), "4".into()),
            ("DIALER_API_WORKERS".into(), "1".into()),
            (
                "DIALER_CALLBACK_RETRY_SCHEDULE".into(),
                "500ms,1s,2s,2s,3s,3s,3s,3s,3s,3s".into(),
            ),
        ];
        extra.extend(spec.env);
        let services = platform::start_services(
            &bins,
            &mut processes,
            &ServiceEnv {
                database_url,
                amqp_url: config.amqp_url.clone(),
                queue_prefix: prefix.clone(),
                extra,
            },
            spec.scale,
        )
        .await
        .expect("services");
        let tenants = accounts
            .into_iter()
            .map(|(account, receiver)| Tenant { account, receiver })
            .collect();
        FaultRun {
            pg,
            broker,
            shared_database,
            pool,
            processes,
            services,
            sims,
            tenants,
            amqp_url: config.amqp_url,
            prefix,
            batches: Vec::new(),
            numbers: 0,
        }
    }

    /// The run's own PostgreSQL.
    pub fn pg(&self) -> &PgInstance {
        self.pg.as_ref().expect("a run with its own PostgreSQL")
    }

    /// The run's own RabbitMQ node.
    pub fn broker(&mut self) -> &mut RabbitNode {
        match &mut self.broker {
            Some(Broker::Node(node)) => node,
            _ => panic!("a run with its own RabbitMQ node"),
        }
    }

    /// The run's own RabbitMQ cluster.
    pub fn cluster(&mut self) -> &mut RabbitCluster {
        match &mut self.broker {
            Some(Broker::Cluster(cluster)) => cluster,
            _ => panic!("a run with its own RabbitMQ cluster"),
        }
    }

    /// Submits and dispatches batch [`BATCH`] of `n` numbers (`+1201555` and four digits from
    /// 1000).
    pub async fn submit(&mut self, n: usize) {
        self.submit_more(n).await
    }

    /// Submits and dispatches the next batch (`BATCH` + how many came before) of `n` numbers
    /// following the last batch's, for the first account through the first API.
    pub async fn submit_more(&mut self, n: usize) {
        self.submit_through(0, 0, n).await
    }

    /// Submits and dispatches the next batch of `n` numbers for account `tenant` through API
    /// `api` (index into `services.api_urls`).
    pub async fn submit_through(&mut self, tenant: usize, api: usize, n: usize) {
        let batch_id = BATCH + self.batches.len() as i64;
        let first = 1000 + self.numbers;
        let data: Vec<Value> = (0..n)
            .map(|i| json!({"phone_number": format!("+1201555{:04}", first + i)}))
            .collect();
        let client = ApiClient::new(
            &self.services.api_urls[api],
            &self.tenants[tenant].account.api_key,
        );
        let submitted = client
            .submit(&json!({"batch_id": batch_id, "dispatch": true, "data": data}))
            .await
            .expect("submit");
        assert_eq!(submitted["accepted"], n, "{submitted}");
        self.batches.push((tenant, batch_id));
        self.numbers += n;
    }

    /// Calls of the batch that have ended at least one attempt.
    pub async fn ended_attempts(&self) -> i64 {
        #[derive(diesel::QueryableByName)]
        struct N {
            #[diesel(sql_type = BigInt)]
            n: i64,
        }
        let Ok(mut conn) = self.pool.get().await else {
            return 0;
        };
        diesel::sql_query("SELECT count(*) AS n FROM call_attempts WHERE state = 'ended'")
            .get_result::<N>(&mut conn)
            .await
            .map(|r| r.n)
            .unwrap_or(0)
    }

    /// Originates each simulated server has taken so far.
    pub async fn originates(&self) -> Vec<u64> {
        let mut all = Vec::new();
        for sim in &self.sims {
            all.push(sim.stats().await["originates_total"].as_u64().unwrap_or(0));
        }
        all
    }

    /// Originates the simulated servers have taken so far, together.
    pub async fn originated(&self) -> u64 {
        self.originates().await.iter().sum()
    }

    /// Waits until at least `n` attempts have ended (calls are then in every state).
    pub async fn until_ended(&mut self, n: i64) {
        let deadline = Instant::now() + Duration::from_secs(60);
        while self.ended_attempts().await < n {
            self.processes
                .check_alive()
                .expect("platform processes alive");
            assert!(Instant::now() < deadline, "fewer than {n} attempts ended");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// `GET` of the first batch's status, answered as it is (no error for a non-2xx).
    pub async fn status_raw(&self) -> (u16, Option<String>, Value) {
        self.status_of(0, BATCH).await
    }

    async fn status_of(&self, tenant: usize, batch_id: i64) -> (u16, Option<String>, Value) {
        let resp = reqwest::Client::new()
            .get(format!(
                "{}/api/v1/queues/batch-status/{batch_id}?limit=1",
                self.services.api_url
            ))
            .header("X-API-KEY", &self.tenants[tenant].account.api_key)
            .timeout(Duration::from_secs(60))
            .send()
            .await
            .expect("the API answers");
        let status = resp.status().as_u16();
        let retry_after = resp
            .headers()
            .get("retry-after")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        (
            status,
            retry_after,
            resp.json().await.unwrap_or(Value::Null),
        )
    }

    /// Waits until the batch is completed and every event written is delivered; then checks
    /// what must hold after any fault, and stops everything.
    pub async fn settle_and_check(mut self, within: Duration) {
        self.settle(within).await;
        self.finish().await;
    }

    /// Waits until every batch is completed and every event written is delivered; then checks
    /// what must hold after any fault.
    pub async fn settle(&mut self, within: Duration) {
        let deadline = Instant::now() + within;
        loop {
            self.processes
                .check_alive()
                .expect("platform processes alive");
            let mut completed = true;
            let mut status = Value::Null;
            for (tenant, b) in &self.batches {
                let (code, _, s) = self.status_of(*tenant, *b).await;
                completed &= code == 200 && s["batch_status"] == "completed";
                status = s;
            }
            let mut events = Vec::new();
            for t in &self.tenants {
                events.push(dialer_devkit::report::events(&self.pool, t.account.account.id).await);
            }
            let done = completed
                && events.iter().all(|e| {
                    e.as_ref()
                        .is_ok_and(|e| e.written > 0 && e.delivered == e.written)
                });
            if done {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "not settled: {status}, events {events:?}; logs in {}",
                self.processes.log_dir().display()
            );
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
        self.check().await;
    }

    /// Stops the run's processes and removes what it made on shared services.
    pub async fn finish(mut self) {
        for t in self.tenants.drain(..) {
            t.receiver.stop().await;
        }
        self.processes.stop_all(Duration::from_secs(15)).await;
        if self.broker.is_none() {
            let _ = platform::clear_queues(&self.amqp_url, &self.prefix, &[1, 2, 3]).await;
        }
        drop(self.pool);
        if let Some((server, name)) = &self.shared_database {
            let _ = platform::drop_database(server, name).await;
        }
    }

    async fn check(&self) {
        #[derive(diesel::QueryableByName)]
        struct Row {
            #[diesel(sql_type = Text)]
            what: String,
            #[diesel(sql_type = BigInt)]
            n: i64,
        }
        let mut conn = self.pool.get().await.expect("conn");
        // Nothing stuck: every call final, every attempt ended.
        let calls: Vec<Row> =
            diesel::sql_query("SELECT status AS what, count(*) AS n FROM calls GROUP BY status")
                .load(&mut conn)
                .await
                .expect("calls");
        for r in &calls {
            let s: CallStatus = r.what.parse().expect("a known status");
            assert!(s.is_final(), "{} calls still {s:?}", r.n);
        }
        let attempts: Vec<Row> = diesel::sql_query(
            "SELECT state AS what, count(*) AS n FROM call_attempts GROUP BY state",
        )
        .load(&mut conn)
        .await
        .expect("attempts");
        let by_state: BTreeMap<String, i64> = attempts.into_iter().map(|r| (r.what, r.n)).collect();
        assert_eq!(
            by_state.keys().collect::<Vec<_>>(),
            ["ended"],
            "{by_state:?}"
        );
        let attempt_ids: Vec<Row> =
            diesel::sql_query("SELECT id::text AS what, 1::bigint AS n FROM call_attempts")
                .load(&mut conn)
                .await
                .expect("attempt ids");
        let attempt_ids: HashSet<String> = attempt_ids.into_iter().map(|r| r.what).collect();

        // Nothing dialed twice: each Originate is an attempt of ours, sent once.
        let mut originated = 0;
        for sim in &self.sims {
            let stats = sim.stats().await;
            let by_channel = stats["originates_by_channel_id"]
                .as_object()
                .cloned()
                .unwrap_or_default();
            for (channel_id, n) in by_channel {
                assert_eq!(n, 1, "attempt {channel_id} originated {n} times");
                assert!(
                    attempt_ids.contains(&channel_id),
                    "an Originate of no attempt: {channel_id}"
                );
                originated += 1;
            }
        }
        assert!(originated as usize <= attempt_ids.len());

        // Nothing lost: every event written arrived, verified, in order; one terminal event
        // per attempt; a repeat (if any) carries the same event_id.
        for t in &self.tenants {
            let written: Vec<Row> = diesel::sql_query(
                "SELECT event_id AS what, 1::bigint AS n FROM call_events WHERE account_id = $1",
            )
            .bind::<BigInt, _>(t.account.account.id)
            .load(&mut conn)
            .await
            .expect("events");
            let written: HashSet<String> = written.into_iter().map(|r| r.what).collect();
            let got = t.receiver.snapshot();
            let received: HashSet<String> = got.events.keys().cloned().collect();
            assert_eq!(received, written, "events received vs written");
            assert_eq!(got.bad_signatures, 0);
            assert_eq!(got.out_of_order, 0);
            let mut terminal: HashMap<(String, i64), u32> = HashMap::new();
            for e in got.call_events() {
                let kind: EventType = e.body["event_type"]
                    .as_str()
                    .unwrap_or("")
                    .parse()
                    .expect("a known event type");
                if kind.is_terminal() {
                    let key = (
                        e.body["call_id"].as_str().unwrap_or("").to_owned(),
                        e.body["attempt"].as_i64().unwrap_or(0),
                    );
                    *terminal.entry(key).or_default() += 1;
                }
            }
            assert!(
                terminal.values().all(|n| *n == 1),
                "an attempt with more than one terminal event"
            );
        }
    }
}
