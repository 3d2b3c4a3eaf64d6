//! The whole platform on this machine as separate processes of the real binaries (API,
//! dispatcher, callback worker, simulated Asterisk servers), for `dialer-devkit demo`,
//! `dialer-devkit bench` and the end-to-end test. Children log to files; they are stopped with
//! SIGTERM (then SIGKILL) by [`Processes::stop_all`], and killed when dropped.

use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use diesel_async::{AsyncConnection, AsyncPgConnection, SimpleAsyncConnection};
use tokio::process::{Child, Command};

use dialer_core::Config;
use dialer_core::db::{self, DbPool, split_database_url};
use dialer_core::topology::{self, Topology};

pub use crate::sims::{RunningSim, SimSpec, SimTimeline, start_sims};

#[derive(Debug, thiserror::Error)]
pub enum PlatformError {
    #[error(
        "binary `{name}` not found in {dir}: build them first (`cargo build --release --bins`)"
    )]
    MissingBinary { name: String, dir: String },
    #[error("cannot start {name}: {source}")]
    Spawn {
        name: String,
        source: std::io::Error,
    },
    #[error("{name} exited ({status}); its log {log} ends with:\n{tail}")]
    Exited {
        name: String,
        status: String,
        log: String,
        tail: String,
    },
    #[error("{what} not ready after {secs} s (logs in {log_dir})")]
    NotReady {
        what: String,
        secs: u64,
        log_dir: String,
    },
    #[error("database: {0}")]
    Database(String),
    #[error("RabbitMQ: {0}")]
    Broker(String),
    #[error("{0}")]
    Io(#[from] std::io::Error),
}

/// The binaries every run needs.
pub const BINARIES: [&str; 4] = ["dialer-api", "dispatcher", "callback-worker", "ami-sim"];

/// Where the platform's binaries are: the directory of the running program (`target/release`
/// for `dialer-devkit`), or its parent (a test runs from `target/debug/deps`).
#[derive(Debug, Clone)]
pub struct Binaries {
    dir: PathBuf,
}

impl Binaries {
    pub fn beside(exe: &Path) -> Result<Binaries, PlatformError> {
        let dir = exe.parent().unwrap_or(Path::new("."));
        let candidates = [dir.to_path_buf(), dir.parent().unwrap_or(dir).to_path_buf()];
        for c in &candidates {
            if BINARIES.iter().all(|b| c.join(b).is_file()) {
                return Ok(Binaries { dir: c.clone() });
            }
        }
        let missing = BINARIES
            .iter()
            .find(|b| !candidates[0].join(b).is_file())
            .copied()
            .unwrap_or("ami-sim");
        Err(PlatformError::MissingBinary {
            name: missing.to_owned(),
            dir: candidates[0].display().to_string(),
        })
    }

    pub fn of_current_exe() -> Result<Binaries, PlatformError> {
        Binaries::beside(&std::env::current_exe()?)
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }
}

/// Runs `job` with the platform's binaries and a process list logging to `<binaries>/<logs>`.
/// Ctrl-C interrupts it; every child is stopped at the end, whatever happened.
pub async fn run_interruptible(
    logs: &str,
    job: impl AsyncFnOnce(&Binaries, &mut Processes) -> anyhow::Result<()>,
) -> anyhow::Result<()> {
    let bins = Binaries::of_current_exe()?;
    let mut processes = Processes::new(&bins.path(logs))?;
    let outcome = tokio::select! {
        r = job(&bins, &mut processes) => r,
        _ = tokio::signal::ctrl_c() => Err(anyhow::anyhow!("interrupted")),
    };
    eprintln!("stopping the platform...");
    processes.stop_all(Duration::from_secs(20)).await;
    outcome
}

/// The database and broker of one local run: `database` dropped and recreated (migrated) beside
/// `config`'s, the exchanges and queues of `prefix` deleted (a run before may have been killed),
/// and a small pool on the new database.
pub async fn fresh_run(
    config: &Config,
    database: &str,
    prefix: &str,
    application: &str,
) -> Result<(String, DbPool), PlatformError> {
    let database_url = fresh_database(&config.database_url, database).await?;
    // A fresh database numbers its accounts from 1: these are the queues a run may have left.
    clear_queues(&config.amqp_url, prefix, &[1, 2, 3]).await?;
    let mut core = config.clone();
    core.database_url = database_url.clone();
    core.db_pool_size = 2;
    let pool =
        db::build_pool(&core, application).map_err(|e| PlatformError::Database(e.to_string()))?;
    Ok((database_url, pool))
}

/// A port free now on loopback, for a child to listen on. Drawn at random below the kernel's
/// ephemeral range: a port the OS picks (port 0) comes from that range, where any outgoing
/// connection on the machine (tests open thousands, to PostgreSQL and RabbitMQ) may take it
/// between this check and the child's bind (a CI run lost the API that way).
pub fn free_port() -> std::io::Result<u16> {
    use std::hash::{BuildHasher, Hasher};
    let ephemeral_low = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|t| t.split_whitespace().next()?.parse::<u16>().ok())
        .unwrap_or(32768);
    let (low, high) = (10_000u16, ephemeral_low.max(10_001));
    for _ in 0..100 {
        // RandomState is seeded afresh each time: enough randomness to spread parallel tests.
        let draw = std::collections::hash_map::RandomState::new()
            .build_hasher()
            .finish();
        let port = low + (draw % u64::from(high - low)) as u16;
        if TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return Ok(port);
        }
    }
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// Drops and recreates database `name` on the server of `base_url`, migrated; returns its URL.
pub async fn fresh_database(base_url: &str, name: &str) -> Result<String, PlatformError> {
    if !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
        return Err(PlatformError::Database(format!(
            "database name `{name}`: letters, digits and _ only"
        )));
    }
    let (server, query) = split_database_url(base_url);
    let admin_url = format!("{server}postgres{query}");
    let mut admin = AsyncPgConnection::establish(&admin_url)
        .await
        .map_err(|e| PlatformError::Database(format!("cannot connect: {e}")))?;
    // Two statements: several in one string run as one transaction, which DROP DATABASE refuses.
    for sql in [
        format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"),
        format!("CREATE DATABASE {name}"),
    ] {
        admin
            .batch_execute(&sql)
            .await
            .map_err(|e| PlatformError::Database(e.to_string()))?;
    }
    let url = format!("{server}{name}{query}");
    dialer_core::migrations::run_pending(&url)
        .await
        .map_err(|e| PlatformError::Database(e.to_string()))?;
    Ok(url)
}

/// Drops a database made by [`fresh_database`].
pub async fn drop_database(base_url: &str, name: &str) -> Result<(), PlatformError> {
    let (server, query) = split_database_url(base_url);
    let mut admin = AsyncPgConnection::establish(&format!("{server}postgres{query}"))
        .await
        .map_err(|e| PlatformError::Database(format!("cannot connect: {e}")))?;
    admin
        .batch_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
        .await
        .map_err(|e| PlatformError::Database(e.to_string()))
}

/// Deletes the exchanges and queues of `prefix`, account queues of `account_ids` included, so a
/// run starts from an empty broker (a run before it may have been killed).
pub async fn clear_queues(
    amqp_url: &str,
    prefix: &str,
    account_ids: &[i64],
) -> Result<(), PlatformError> {
    let conn = topology::connect_once(amqp_url, "dialer-devkit")
        .await
        .map_err(|e| PlatformError::Broker(e.to_string()))?;
    let channel = conn
        .create_channel()
        .await
        .map_err(|e| PlatformError::Broker(e.to_string()))?;
    let t = Topology::new(prefix);
    let result = async {
        t.delete_account_queues(&channel, account_ids).await?;
        t.delete(&channel).await
    }
    .await
    .map_err(|e| PlatformError::Broker(e.to_string()));
    let _ = conn.close(200, "done".into()).await;
    result
}

struct Process {
    name: String,
    child: Child,
    log: PathBuf,
}

/// Child processes, in start order.
pub struct Processes {
    list: Vec<Process>,
    log_dir: PathBuf,
}

impl Processes {
    pub fn new(log_dir: &Path) -> Result<Processes, PlatformError> {
        std::fs::create_dir_all(log_dir)?;
        Ok(Processes {
            list: Vec::new(),
            log_dir: log_dir.to_path_buf(),
        })
    }

    pub fn log_dir(&self) -> &Path {
        &self.log_dir
    }

    /// Starts `program` with `env` added to this process's environment; stdout and stderr go to
    /// `<log_dir>/<name>.log`.
    pub fn spawn(
        &mut self,
        name: &str,
        program: &Path,
        args: &[String],
        env: &[(String, String)],
    ) -> Result<u32, PlatformError> {
        let log = self.log_dir.join(format!("{name}.log"));
        let out = std::fs::File::create(&log)?;
        let err = out.try_clone()?;
        let mut cmd = Command::new(program);
        cmd.args(args)
            // An error at start is logged as its chain of causes, not buried under a backtrace
            // (the log's tail is what a failure reports); panics keep theirs.
            .env("RUST_LIB_BACKTRACE", "0")
            .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .stdin(Stdio::null())
            .stdout(Stdio::from(out))
            .stderr(Stdio::from(err))
            .kill_on_drop(true);
        // Its own process group: a Ctrl-C in the terminal reaches only the devkit, which then
        // stops the children in order.
        cmd.process_group(0);
        let child = cmd.spawn().map_err(|source| PlatformError::Spawn {
            name: name.to_owned(),
            source,
        })?;
        let pid = child.id().unwrap_or(0);
        self.list.push(Process {
            name: name.to_owned(),
            child,
            log,
        });
        Ok(pid)
    }

    /// An error naming the first child that has exited, with the end of its log.
    pub fn check_alive(&mut self) -> Result<(), PlatformError> {
        for p in &mut self.list {
            if let Ok(Some(status)) = p.child.try_wait() {
                return Err(PlatformError::Exited {
                    name: p.name.clone(),
                    status: status.to_string(),
                    log: p.log.display().to_string(),
                    tail: log_tail(&p.log, 15),
                });
            }
        }
        Ok(())
    }

    /// Sends a signal to the named child (`libc::SIGTERM`, `libc::SIGKILL`...).
    /// Each running child's name and process id.
    pub fn pids(&self) -> Vec<(String, u32)> {
        self.list
            .iter()
            .filter_map(|p| Some((p.name.clone(), p.child.id()?)))
            .collect()
    }

    pub fn signal(&self, name: &str, signal: i32) -> bool {
        self.list
            .iter()
            .filter(|p| p.name == name)
            .filter_map(|p| p.child.id())
            .map(|pid| send_signal(pid, signal))
            .fold(false, |a, b| a | b)
    }

    /// Stops every child, last started first: SIGTERM, then SIGKILL after `grace`.
    pub async fn stop_all(&mut self, grace: Duration) {
        while let Some(mut p) = self.list.pop() {
            if let Some(pid) = p.child.id() {
                send_signal(pid, libc::SIGTERM);
            }
            if tokio::time::timeout(grace, p.child.wait()).await.is_err() {
                let _ = p.child.start_kill();
                let _ = p.child.wait().await;
            }
        }
    }
}

fn send_signal(pid: u32, signal: i32) -> bool {
    let Ok(pid) = i32::try_from(pid) else {
        return false;
    };
    // SAFETY: kill(2) on a child we started and have not reaped; no memory is involved.
    unsafe { libc::kill(pid, signal) == 0 }
}

fn log_tail(path: &Path, lines: usize) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

/// Waits until `ready` says so, `every` apart; fails when a child has exited or after `timeout`.
async fn wait_until(
    what: &str,
    timeout: Duration,
    every: Duration,
    processes: &mut Processes,
    mut ready: impl AsyncFnMut() -> bool,
) -> Result<(), PlatformError> {
    let deadline = Instant::now() + timeout;
    loop {
        processes.check_alive()?;
        if ready().await {
            return Ok(());
        }
        if Instant::now() > deadline {
            return Err(PlatformError::NotReady {
                what: what.to_owned(),
                secs: timeout.as_secs(),
                log_dir: processes.log_dir.display().to_string(),
            });
        }
        tokio::time::sleep(every).await;
    }
}

/// Waits until `url` answers 200.
pub async fn wait_for_http(
    url: &str,
    timeout: Duration,
    processes: &mut Processes,
) -> Result<(), PlatformError> {
    let client = reqwest::Client::new();
    let every = Duration::from_millis(100);
    wait_until(url, timeout, every, processes, async || {
        let answer = client.get(url).timeout(Duration::from_secs(2)).send().await;
        answer.is_ok_and(|r| r.status().is_success())
    })
    .await
}

/// Waits until `addr` accepts TCP connections.
pub async fn wait_for_tcp(
    addr: SocketAddr,
    timeout: Duration,
    processes: &mut Processes,
) -> Result<(), PlatformError> {
    let every = Duration::from_millis(50);
    wait_until(&addr.to_string(), timeout, every, processes, async || {
        tokio::net::TcpStream::connect(addr).await.is_ok()
    })
    .await
}

/// Where the services of a run listen.
#[derive(Debug, Clone)]
pub struct RunningServices {
    /// The first API's.
    pub api_url: String,
    /// Every API's, the first first.
    pub api_urls: Vec<String>,
    pub dispatcher_metrics_url: String,
    /// Every callback worker's `/metrics`.
    pub worker_metrics_urls: Vec<String>,
}

/// How many of each service a run starts (at least one of each).
#[derive(Debug, Clone, Copy)]
pub struct Scale {
    pub apis: usize,
    pub dispatchers: usize,
    pub workers: usize,
}

impl Scale {
    /// One of each.
    pub const ONE: Scale = Scale {
        apis: 1,
        dispatchers: 1,
        workers: 1,
    };
}

/// The environment every service of a run shares.
#[derive(Debug, Clone)]
pub struct ServiceEnv {
    pub database_url: String,
    pub amqp_url: String,
    pub queue_prefix: String,
    /// Added to every service's environment (e.g. a short callback retry schedule).
    pub extra: Vec<(String, String)>,
}

impl ServiceEnv {
    /// The benchmarks' environment: the run's database and queue prefix, logs at `warn` (a
    /// benchmark's processes should not spend its time logging).
    pub fn quiet(database_url: String, amqp_url: &str, queue_prefix: &str) -> ServiceEnv {
        ServiceEnv {
            database_url,
            amqp_url: amqp_url.to_owned(),
            queue_prefix: queue_prefix.to_owned(),
            extra: vec![("RUST_LOG".to_owned(), "warn".to_owned())],
        }
    }

    fn vars(&self) -> Vec<(String, String)> {
        let mut v = vec![
            ("DATABASE_URL".to_owned(), self.database_url.clone()),
            ("AMQP_URL".to_owned(), self.amqp_url.clone()),
            ("DIALER_QUEUE_PREFIX".to_owned(), self.queue_prefix.clone()),
            (
                "DIALER_ALLOW_HTTP_LOOPBACK_CALLBACKS".to_owned(),
                "true".to_owned(),
            ),
        ];
        v.extend(self.extra.iter().cloned());
        v
    }
}

/// Starts the APIs, dispatchers and callback workers `scale` asks for; returns once every API
/// and dispatcher answers.
pub async fn start_services(
    bins: &Binaries,
    processes: &mut Processes,
    env: &ServiceEnv,
    scale: Scale,
) -> Result<RunningServices, PlatformError> {
    let api_ports = (0..scale.apis.max(1))
        .map(|_| free_port())
        .collect::<std::io::Result<Vec<u16>>>()?;
    let api_urls: Vec<String> = api_ports
        .iter()
        .map(|p| format!("http://127.0.0.1:{p}"))
        .collect();
    let api_url = api_urls[0].clone();
    // Every service learns the API's address (recording URLs, the media URLs the PBXs use);
    // recordings go under the run's log directory unless the run says otherwise.
    let mut env = env.clone();
    let defaults = [
        ("DIALER_PUBLIC_URL", api_url.clone()),
        (
            "DIALER_RECORDINGS_STORE",
            processes.log_dir().join("recordings").display().to_string(),
        ),
    ];
    for (key, value) in defaults {
        if !env.extra.iter().any(|(k, _)| k == key) {
            env.extra.push((key.to_owned(), value));
        }
    }
    let env = &env;
    for (i, port) in api_ports.iter().enumerate() {
        let mut api_env = env.vars();
        api_env.push(("DIALER_API_ADDR".to_owned(), format!("127.0.0.1:{port}")));
        // The first keeps the plain name the logs and tests have always used.
        let name = match i {
            0 => "dialer-api".to_owned(),
            _ => format!("dialer-api-{}", i + 1),
        };
        processes.spawn(&name, &bins.path("dialer-api"), &[], &api_env)?;
    }
    let mut metrics_urls = Vec::new();
    for i in 0..scale.dispatchers.max(1) {
        let port = free_port()?;
        let mut denv = env.vars();
        denv.push((
            "DIALER_DISPATCHER_METRICS_ADDR".to_owned(),
            format!("127.0.0.1:{port}"),
        ));
        processes.spawn(
            &format!("dispatcher-{}", i + 1),
            &bins.path("dispatcher"),
            &[],
            &denv,
        )?;
        metrics_urls.push(format!("http://127.0.0.1:{port}/metrics"));
    }
    let mut worker_metrics_urls = Vec::new();
    for i in 0..scale.workers.max(1) {
        let port = free_port()?;
        let mut wenv = env.vars();
        wenv.push((
            "DIALER_CALLBACK_METRICS_ADDR".to_owned(),
            format!("127.0.0.1:{port}"),
        ));
        processes.spawn(
            &format!("callback-worker-{}", i + 1),
            &bins.path("callback-worker"),
            &[],
            &wenv,
        )?;
        worker_metrics_urls.push(format!("http://127.0.0.1:{port}/metrics"));
    }
    for url in &api_urls {
        wait_for_http(&format!("{url}/readyz"), Duration::from_secs(30), processes).await?;
    }
    for m in metrics_urls.iter().chain(&worker_metrics_urls) {
        wait_for_http(m, Duration::from_secs(30), processes).await?;
    }
    Ok(RunningServices {
        api_url,
        api_urls,
        dispatcher_metrics_url: metrics_urls.into_iter().next().unwrap_or_default(),
        worker_metrics_urls,
    })
}
