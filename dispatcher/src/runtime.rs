//! A running dispatcher: its tasks and how they are wired.
//!
//! - leases: heartbeat, take/renew server leases, start and stop server connections;
//! - intake: each account's dial jobs from RabbitMQ (manual acks, bounded prefetch) to the
//!   scheduler ([`crate::intake`]);
//! - scheduler: fair claims and paced Originates ([`crate::scheduler`]);
//! - writer: transitions from the AMI to PostgreSQL with their events, then a prompt to the
//!   callback worker for the events that entered its queue;
//! - sweeper: guard times, maximum call length, calls whose due time came (retries, calling
//!   hours), calls whose batch expired or was cancelled (`dialer_core::closing_sweep`), attempts left behind by a dispatcher
//!   that died ([`crate::recovery`]), and the dial outbox.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use lapin::options::BasicQosOptions;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;
use tracing::{info, warn};

use dialer_core::db::{self, DbPool};
use dialer_core::dial_outbox;
use dialer_core::topology::{self, Topology};

use crate::config::DispatcherConfig;
use crate::flow::FlowSetup;
use crate::intake::intake_loop;
use crate::leases;
use crate::recovery;
use crate::registry::Registry;
use crate::scheduler::{Job, Scheduler};
use crate::send_gate::SendGate;
use crate::server::{self, Server, Servers};
use crate::server_status;
use crate::state::Transition;
use dialer_core::closing_sweep;
use dialer_core::media_url::MediaUrls;

pub struct Dispatcher {
    config: DispatcherConfig,
    pool: DbPool,
    registry: Arc<Registry>,
    servers: Servers,
    stop_intake: watch::Sender<bool>,
    stop_all: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
    _amqp: lapin::Connection,
}

impl Dispatcher {
    /// Checks the schema, connects to PostgreSQL and RabbitMQ, and starts every task.
    pub async fn start(config: DispatcherConfig) -> anyhow::Result<Dispatcher> {
        let pool = db::build_pool(&config.core, "dispatcher")?;
        {
            let mut conn = pool.get().await.map_err(db::DbError::from)?;
            dialer_core::migrations::check_schema(&mut conn).await?;
            recovery::release_previous_run(&mut conn, &config.id).await?;
        }
        let flow = {
            let mut conn = pool.get().await.map_err(db::DbError::from)?;
            Arc::new(FlowSetup {
                context: config.flow_context.clone(),
                media: MediaUrls::load(&mut conn, &config.core.media_url).await?,
            })
        };
        let topology = Topology::new(&config.core.queue_prefix);
        info!("connecting to RabbitMQ (waits until it answers)");
        let amqp = topology::connect(&config.core.amqp_url, &config.id).await?;
        let publish = topology::confirm_channel(&amqp).await?;
        topology.declare(&publish).await?;
        let consume = amqp.create_channel().await?;
        consume
            .basic_qos(config.prefetch, BasicQosOptions::default())
            .await?;

        let registry = Arc::new(Registry::default());
        let servers: Servers = Arc::new(Mutex::new(HashMap::new()));
        let (transitions_tx, transitions_rx) = mpsc::unbounded_channel::<Transition>();
        let (jobs_tx, jobs_rx) = mpsc::channel::<Job>(usize::from(config.prefetch) + 16);
        let (stop_intake, intake_rx) = watch::channel(false);
        let (stop_all, all_rx) = watch::channel(false);

        let mut tasks = Vec::new();
        let shared = Shared {
            pool: pool.clone(),
            config: config.clone(),
            registry: registry.clone(),
            servers: servers.clone(),
            transitions: transitions_tx.clone(),
        };
        tasks.push(tokio::spawn(lease_loop(shared.clone(), all_rx.clone())));
        tasks.push(tokio::spawn(crate::transition_writer::run(
            pool.clone(),
            publish.clone(),
            topology.clone(),
            transitions_rx,
            config.core.public_url.clone(),
        )));
        tasks.push(tokio::spawn(intake_loop(
            pool.clone(),
            consume,
            topology.clone(),
            config.id.clone(),
            jobs_tx,
            intake_rx.clone(),
        )));
        let scheduler = Scheduler {
            pool: pool.clone(),
            dispatcher_id: config.id.clone(),
            registry: registry.clone(),
            servers: servers.clone(),
            transitions: transitions_tx.clone(),
            global_cps: config.global_cps,
            account_pacers: Arc::default(),
            late: Arc::default(),
            gate: SendGate::start(pool.clone(), config.id.clone()),
            flow,
        };
        tasks.push(tokio::spawn(scheduler.run(jobs_rx, intake_rx)));
        tasks.push(tokio::spawn(sweep_loop(shared, publish, topology, all_rx)));
        info!(id = %config.id, "dispatcher started");
        Ok(Dispatcher {
            config,
            pool,
            registry,
            servers,
            stop_intake,
            stop_all,
            tasks,
            _amqp: amqp,
        })
    }

    pub fn id(&self) -> &str {
        &self.config.id
    }

    /// Each held server's capacity factor (1.0 healthy, lower while backed off), by code.
    pub fn capacity_factors(&self) -> Vec<(String, f64)> {
        let mut v: Vec<(String, f64)> = self
            .servers
            .lock()
            .map(|m| {
                m.values()
                    .map(|s| (s.spec.code.clone(), s.capacity_factor()))
                    .collect()
            })
            .unwrap_or_default();
        v.sort_by(|a, b| a.0.cmp(&b.0));
        v
    }

    /// Calls this dispatcher is following now.
    pub fn live_calls(&self) -> usize {
        self.registry.len()
    }

    /// Graceful stop: take no new jobs, follow calls in flight until they end or the deadline
    /// passes, then give the servers back. Unacknowledged jobs return to the queue.
    pub async fn shutdown(self) {
        self.stop_intake.send_replace(true);
        let deadline = Instant::now() + self.config.shutdown_deadline;
        while !self.registry.is_empty() && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        if !self.registry.is_empty() {
            warn!(
                calls = self.registry.len(),
                "shutdown deadline passed with calls in flight; another dispatcher reconciles them"
            );
        }
        // Let the writer flush what the last calls reported.
        tokio::time::sleep(Duration::from_millis(300)).await;
        self.stop_all.send_replace(true);
        let servers: Vec<Arc<Server>> = self
            .servers
            .lock()
            .map(|s| s.values().cloned().collect())
            .unwrap_or_default();
        for s in servers {
            s.stop().await;
        }
        if let Ok(mut conn) = self.pool.get().await
            && let Err(e) = leases::release_all(&mut conn, &self.config.id).await
        {
            warn!(error = %e, "could not release leases; they will lapse");
        }
        for t in self.tasks {
            t.abort();
        }
        info!(id = %self.config.id, "dispatcher stopped");
    }
}

/// What the lease and sweep tasks both work with.
#[derive(Clone)]
struct Shared {
    pool: DbPool,
    config: DispatcherConfig,
    registry: Arc<Registry>,
    servers: Servers,
    transitions: mpsc::UnboundedSender<Transition>,
}

async fn lease_loop(shared: Shared, mut stop: watch::Receiver<bool>) {
    let Shared { pool, config, .. } = &shared;
    let every = config.lease_ttl / 4;
    loop {
        match pool.get().await {
            Ok(mut conn) => match leases::renew(&mut conn, &config.id, config.lease_ttl).await {
                Ok(holding) => {
                    let (lost, release) = apply_holding(&holding, &shared);
                    for s in lost {
                        warn!(server = %s.spec.code, "server lease lost or server changed");
                        s.stop().await;
                    }
                    for s in release {
                        match leases::release(&mut conn, &config.id, s.spec.id).await {
                            Ok(()) => {
                                info!(server = %s.spec.code, "drained server handed over");
                                if let Ok(mut map) = shared.servers.lock() {
                                    map.remove(&s.spec.id);
                                }
                                s.stop().await;
                            }
                            Err(e) => warn!(error = %e, "lease release failed"),
                        }
                    }
                }
                Err(e) => warn!(error = %e, "lease renewal failed"),
            },
            Err(e) => warn!(error = %e, "no database connection for leases"),
        }
        tokio::select! {
            _ = tokio::time::sleep(every) => {}
            _ = stop.wait_for(|s| *s) => return,
        }
    }
}

/// Starts servers newly held, stops those lost, and balances: above its share, a dispatcher
/// drains one server (no new calls) and returns the drained ones to be released.
fn apply_holding(
    holding: &leases::Holding,
    shared: &Shared,
) -> (Vec<Arc<Server>>, Vec<Arc<Server>>) {
    let Shared {
        config,
        registry,
        servers,
        transitions,
        ..
    } = shared;
    let mut lost = Vec::new();
    let mut release = Vec::new();
    let Ok(mut map) = servers.lock() else {
        return (lost, release);
    };
    let held: HashSet<i64> = holding.servers.iter().map(|s| s.id).collect();
    for spec in &holding.servers {
        if map
            .get(&spec.id)
            .is_some_and(|s| !server::same_setup(&s.spec, spec))
            && let Some(old) = map.remove(&spec.id)
        {
            lost.push(old);
        }
        map.entry(spec.id).or_insert_with(|| {
            info!(server = %spec.code, dispatcher = %config.id, "server lease taken");
            Server::start(spec.clone(), registry.clone(), transitions.clone())
        });
    }
    let gone: Vec<i64> = map
        .keys()
        .filter(|id| !held.contains(id))
        .copied()
        .collect();
    for id in gone {
        if let Some(s) = map.remove(&id) {
            lost.push(s);
        }
    }
    let active = map.values().filter(|s| !s.is_draining()).count();
    if active > holding.quota {
        // The least busy server goes first.
        if let Some(s) = map
            .values()
            .filter(|s| !s.is_draining())
            .min_by_key(|s| (registry.on_server(s.spec.id), std::cmp::Reverse(s.spec.id)))
        {
            info!(server = %s.spec.code, "above this dispatcher's share: draining");
            s.set_draining(true);
        }
    } else if active < holding.quota {
        // Another dispatcher left: keep what was being drained.
        for s in map.values().filter(|s| s.is_draining()) {
            s.set_draining(false);
        }
    }
    for s in map.values() {
        if s.is_draining() && s.is_idle(registry) {
            release.push(s.clone());
        }
    }
    (lost, release)
}

/// How long the sweeper waits for a server's events to be applied before it judges anyway.
const SETTLE_WITHIN: Duration = Duration::from_secs(2);

async fn sweep_loop(
    shared: Shared,
    channel: lapin::Channel,
    topology: Topology,
    mut stop: watch::Receiver<bool>,
) {
    let Shared {
        pool,
        config,
        registry,
        servers,
        transitions,
    } = shared;
    let mut last_slow = Instant::now() - Duration::from_secs(60);
    let mut last_status = Instant::now() - server_status::EVERY;
    let mut rate_meter = server_status::RateMeter::default();
    loop {
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_millis(500)) => {}
            _ = stop.wait_for(|s| *s) => return,
        }
        let now = Instant::now();
        let held: Vec<Arc<Server>> = servers
            .lock()
            .map(|m| m.values().cloned().collect())
            .unwrap_or_default();
        for s in &held {
            s.check_health();
        }
        metrics::gauge!("dialer_live_calls").set(registry.len() as f64);
        if now.duration_since(last_status) >= server_status::EVERY {
            last_status = now;
            let rates = rate_meter.rates(now, registry.sent_counts());
            let me = server_status::DispatcherReport {
                global_cps: config.global_cps,
                account_rates: rates.by_account,
            };
            let reports: Vec<server_status::Report> = held
                .iter()
                .map(|s| server_status::Report {
                    server_id: s.spec.id,
                    connected: s.is_connected(),
                    draining: s.is_draining(),
                    capacity_factor: s.capacity_factor(),
                    live_calls: i32::try_from(registry.on_server(s.spec.id)).unwrap_or(i32::MAX),
                    calls_per_second: rates.by_server.get(&s.spec.id).copied().unwrap_or(0.0),
                })
                .collect();
            let published = match pool.get().await {
                Ok(mut conn) => server_status::publish(&mut conn, &config.id, &me, &reports)
                    .await
                    .map_err(|e| e.to_string()),
                Err(e) => Err(e.to_string()),
            };
            if let Err(e) = published {
                warn!(error = %e, "server status not written");
            }
        }
        if registry.awaits_judgement(now) {
            // Judged on what the PBXs had said by now, not on this timer alone: after this
            // process was stopped, their events wait unread in the sockets while every guard
            // and maximum length has run out.
            let settled = held.iter().map(|s| s.settle(SETTLE_WITHIN));
            futures_util::future::join_all(settled).await;
        }
        for id in registry.overdue(now) {
            if let Some(t) = registry.lose(&id, "the PBX gave no outcome in time") {
                let _ = transitions.send(t);
            }
        }
        for (id, server_id) in registry.take_too_long(now) {
            let server = servers.lock().ok().and_then(|m| m.get(&server_id).cloned());
            if let Some(server) = server
                && let Err(e) = server.hangup(id).await
            {
                warn!(error = %e, "hangup at maximum call length failed; the guard will end it");
            }
        }
        if now.duration_since(last_slow) < Duration::from_secs(2) {
            continue;
        }
        last_slow = now;
        if let Err(e) = recovery::release_due_calls(&pool, &channel, &topology).await {
            warn!(error = %e, "due calls sweep failed");
        }
        if let Err(e) = closing_sweep::end_closed(&pool, &channel, &topology).await {
            warn!(error = %e, "closing sweep failed");
        }
        recovery::adopt_orphans(&pool, &config, &registry, &servers, &transitions).await;
        // What a prompt publish left behind (broker down, process stopped before it).
        let stale_jobs = dial_outbox::Scope::OlderThan(5);
        let jobs = dial_outbox::publish_pending(&pool, &channel, &topology, stale_jobs).await;
        if let Err(e) = jobs {
            warn!(error = %e, "dial outbox sweep failed");
        }
    }
}
