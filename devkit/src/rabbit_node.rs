//! A RabbitMQ node of a fault test's own: its own node name, AMQP and distribution ports, data
//! and log directories and Erlang cookie (`HOME`), started from the installed server's own
//! script in the foreground, so the test can stop, kill and start it without touching the
//! machine's shared broker. Configuration files of the machine (`/etc/rabbitmq`) are not read.

use std::path::PathBuf;
use std::process::Stdio;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use tokio::process::{Child, Command};

use crate::platform::{PlatformError, free_port};

/// The server script that runs the node in the foreground as the current user (Debian's
/// `/usr/sbin/rabbitmq-server` switches to the `rabbitmq` user first).
const SERVER: &str = "/usr/lib/rabbitmq/bin/rabbitmq-server";
/// Its control tool, likewise run as the current user.
const CTL: &str = "/usr/lib/rabbitmq/bin/rabbitmqctl";

/// One private RabbitMQ node; killed and removed when dropped.
pub struct RabbitNode {
    dir: PathBuf,
    name: String,
    port: u16,
    dist_port: u16,
    child: Option<Child>,
}

impl RabbitNode {
    /// Starts a node on free loopback ports and waits until it takes AMQP connections.
    pub async fn start() -> Result<RabbitNode, PlatformError> {
        let mut node = RabbitNode::prepare(None)?;
        node.start_node().await?;
        Ok(node)
    }

    /// A node not started yet; with `cookie`, its Erlang cookie (nodes of one cluster and
    /// `rabbitmqctl` must share it), else one of its own made at its first start.
    pub fn prepare(cookie: Option<&str>) -> Result<RabbitNode, PlatformError> {
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let pid = std::process::id();
        let dir = std::env::temp_dir().join(format!("dialer-rabbit-{pid}-{n}"));
        std::fs::create_dir_all(dir.join("log"))?;
        std::fs::write(dir.join("enabled_plugins"), "[].\n")?;
        std::fs::write(dir.join("rabbitmq.conf"), "")?;
        std::fs::write(dir.join("rabbitmq-env.conf"), "")?;
        if let Some(cookie) = cookie {
            use std::os::unix::fs::PermissionsExt;
            let path = dir.join(".erlang.cookie");
            std::fs::write(&path, cookie)?;
            // Erlang refuses a cookie file others can read.
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o400))?;
        }
        Ok(RabbitNode {
            dir,
            name: format!("dialer-fault-{pid}-{n}@localhost"),
            port: free_port()?,
            dist_port: free_port()?,
            child: None,
        })
    }

    /// The Erlang node name (`name@localhost`).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The AMQP port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Whether the node was started and not stopped since.
    pub fn is_running(&self) -> bool {
        self.child.is_some()
    }

    /// The environment that points RabbitMQ's scripts at this node's own files.
    fn node_env(&self, cmd: &mut Command) {
        let d = |p: &str| self.dir.join(p).display().to_string();
        cmd.env("HOME", &self.dir)
            .env("RABBITMQ_NODENAME", &self.name)
            .env("RABBITMQ_NODE_IP_ADDRESS", "127.0.0.1")
            .env("RABBITMQ_NODE_PORT", self.port.to_string())
            .env("RABBITMQ_DIST_PORT", self.dist_port.to_string())
            .env("RABBITMQ_MNESIA_BASE", d("mnesia"))
            .env("RABBITMQ_LOG_BASE", d("log"))
            .env("RABBITMQ_ENABLED_PLUGINS_FILE", d("enabled_plugins"))
            .env("RABBITMQ_CONFIG_FILE", d("rabbitmq.conf"))
            .env("RABBITMQ_ADVANCED_CONFIG_FILE", d("advanced.config"))
            .env("RABBITMQ_CONF_ENV_FILE", d("rabbitmq-env.conf"))
            .env("RABBITMQ_PID_FILE", d("pid"));
    }

    /// Runs `rabbitmqctl` against this node; its standard output, or an error with its
    /// standard error.
    pub async fn ctl(&self, args: &[&str]) -> Result<String, PlatformError> {
        let mut cmd = Command::new(CTL);
        self.node_env(&mut cmd);
        cmd.arg("-n")
            .arg(&self.name)
            .args(args)
            .stdin(Stdio::null());
        let out = tokio::time::timeout(Duration::from_secs(120), cmd.output())
            .await
            .map_err(|_| {
                PlatformError::Broker(format!("rabbitmqctl {args:?}: no answer in 120 s"))
            })?
            .map_err(|source| PlatformError::Spawn {
                name: CTL.to_owned(),
                source,
            })?;
        match out.status.success() {
            true => Ok(String::from_utf8_lossy(&out.stdout).into_owned()),
            false => Err(PlatformError::Broker(format!(
                "rabbitmqctl -n {} {args:?}: {}{}",
                self.name,
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ))),
        }
    }

    /// `amqp://` URL of the node (guest, allowed on loopback).
    pub fn url(&self) -> String {
        format!("amqp://guest:guest@127.0.0.1:{}/%2f", self.port)
    }

    /// The node's own log directory.
    pub fn log_dir(&self) -> PathBuf {
        self.dir.join("log")
    }

    /// Starts the node (again; its queues and messages are kept on disk) and waits until it
    /// takes AMQP connections.
    pub async fn start_node(&mut self) -> Result<(), PlatformError> {
        if self.child.is_some() {
            return Ok(());
        }
        let out = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.join("log/console.log"))?;
        let err = out.try_clone()?;
        let mut cmd = Command::new(SERVER);
        self.node_env(&mut cmd);
        cmd.stdin(Stdio::null())
            .stdout(Stdio::from(out))
            .stderr(Stdio::from(err))
            .kill_on_drop(true)
            // Its own process group: the script, the Erlang VM and its helpers stop together.
            .process_group(0);
        let child = cmd.spawn().map_err(|source| PlatformError::Spawn {
            name: SERVER.to_owned(),
            source,
        })?;
        self.child = Some(child);
        self.until_ready(Duration::from_secs(90)).await
    }

    async fn until_ready(&mut self, within: Duration) -> Result<(), PlatformError> {
        let deadline = Instant::now() + within;
        let url = self.url();
        loop {
            if let Some(child) = &mut self.child
                && let Ok(Some(status)) = child.try_wait()
            {
                self.child = None;
                return Err(PlatformError::Broker(format!(
                    "RabbitMQ node {} exited ({status}); logs in {}",
                    self.name,
                    self.log_dir().display()
                )));
            }
            let probe = dialer_core::topology::connect_once(&url, "devkit-probe");
            if let Ok(Ok(conn)) = tokio::time::timeout(Duration::from_secs(5), probe).await {
                let _ = conn.close(200, "ready".into()).await;
                return Ok(());
            }
            if Instant::now() > deadline {
                return Err(PlatformError::Broker(format!(
                    "RabbitMQ node {} not ready after {} s; logs in {}",
                    self.name,
                    within.as_secs(),
                    self.log_dir().display()
                )));
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }

    /// Stops the node: gracefully (SIGTERM: connections closed, then the node stops) or
    /// killed (SIGKILL to every process of it: as a crash or a power cut of its host).
    pub async fn stop_node(&mut self, kill: bool) -> Result<(), PlatformError> {
        let Some(mut child) = self.child.take() else {
            return Ok(());
        };
        if let Some(pid) = child.id() {
            let signal = if kill { libc::SIGKILL } else { libc::SIGTERM };
            // SAFETY: kill(2) on the process group of a child we started; no memory involved.
            unsafe { libc::kill(-(pid as i32), signal) };
        }
        match tokio::time::timeout(Duration::from_secs(60), child.wait()).await {
            Ok(_) => Ok(()),
            Err(_) => {
                let _ = child.start_kill();
                Err(PlatformError::Broker(format!(
                    "RabbitMQ node {} did not stop within 60 s",
                    self.name
                )))
            }
        }
    }
}

impl Drop for RabbitNode {
    fn drop(&mut self) {
        if let Some(child) = &self.child
            && let Some(pid) = child.id()
        {
            // SAFETY: as in stop_node.
            unsafe { libc::kill(-(pid as i32), libc::SIGKILL) };
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
