//! A PostgreSQL server of a fault test's own: `initdb` in a temporary directory, `pg_ctl` on a
//! free port, so the test can stop, kill and start it without touching the machine's shared
//! server. As root (CI) the server runs as the `postgres` user, which initdb requires.
//!
//! Durability settings are PostgreSQL's defaults (fsync and synchronous commit on): a fault test
//! must see what production would.

use std::path::{Path, PathBuf};
use std::process::Output;
use std::sync::atomic::{AtomicU32, Ordering};

use tokio::process::Command;

use crate::platform::{PlatformError, free_port};

/// One private PostgreSQL server; stopped (immediately) and removed when dropped.
pub struct PgInstance {
    dir: PathBuf,
    bin: PathBuf,
    port: u16,
    /// `runuser -u postgres --` when we are root.
    as_postgres: bool,
}

/// The newest PostgreSQL server binaries installed (Debian's layout), else those on PATH.
fn server_bin_dir() -> Option<PathBuf> {
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .filter_map(Result::ok)
        .filter_map(|e| {
            let v = e.file_name().to_str()?.parse::<u32>().ok()?;
            let bin = e.path().join("bin");
            bin.join("pg_ctl").exists().then_some((v, bin))
        })
        .collect();
    versions.sort();
    versions.pop().map(|(_, bin)| bin)
}

fn failed(what: &str, out: &Output) -> PlatformError {
    PlatformError::Database(format!(
        "{what}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    ))
}

impl PgInstance {
    /// Initialises and starts a server on a free loopback port.
    pub async fn start() -> Result<PgInstance, PlatformError> {
        let bin = server_bin_dir().unwrap_or_default();
        // SAFETY: geteuid(2) has no preconditions and touches no memory.
        let as_postgres = unsafe { libc::geteuid() } == 0;
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!("dialer-pg-{}-{n}", std::process::id()));
        let pg = PgInstance {
            dir,
            bin,
            port: free_port()?,
            as_postgres,
        };
        pg.run(Path::new("mkdir"), &["-p", &pg.dir.display().to_string()])
            .await?;
        let data = pg.data().display().to_string();
        let out = pg
            .run(
                &pg.bin.join("initdb"),
                &["-D", &data, "-A", "trust", "-U", "postgres", "-E", "UTF8"],
            )
            .await?;
        if !out.status.success() {
            return Err(failed("initdb", &out));
        }
        pg.start_server().await?;
        Ok(pg)
    }

    fn data(&self) -> PathBuf {
        self.dir.join("data")
    }

    /// The URL of database `db` on this server.
    pub fn url(&self, db: &str) -> String {
        format!("postgres://postgres@127.0.0.1:{}/{db}", self.port)
    }

    /// The server's port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The server's own log.
    pub fn log(&self) -> PathBuf {
        self.dir.join("server.log")
    }

    /// `program` as the server's user: through `runuser -u postgres --` when we are root.
    fn command(&self, program: &Path) -> std::process::Command {
        if self.as_postgres {
            let mut c = std::process::Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(program);
            c
        } else {
            std::process::Command::new(program)
        }
    }

    async fn run(&self, program: &Path, args: &[&str]) -> Result<Output, PlatformError> {
        let mut cmd = Command::from(self.command(program));
        cmd.args(args)
            .kill_on_drop(true)
            .output()
            .await
            .map_err(|source| PlatformError::Spawn {
                name: program.display().to_string(),
                source,
            })
    }

    async fn pg_ctl(&self, args: &[&str]) -> Result<(), PlatformError> {
        let data = self.data().display().to_string();
        let mut all = vec!["-D", data.as_str()];
        all.extend_from_slice(args);
        let out = self.run(&self.bin.join("pg_ctl"), &all).await?;
        if out.status.success() {
            Ok(())
        } else {
            Err(failed(&format!("pg_ctl {}", args.join(" ")), &out))
        }
    }

    /// Starts the server (again) and waits until it accepts connections.
    pub async fn start_server(&self) -> Result<(), PlatformError> {
        let options = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1 -c max_connections=100",
            self.port,
            self.dir.display()
        );
        let log = self.log().display().to_string();
        self.pg_ctl(&["-o", &options, "-l", &log, "-w", "-t", "60", "start"])
            .await
    }

    /// Stops the server: `fast` (sessions ended, a clean shutdown) or `immediate` (as a crash:
    /// recovery runs at the next start).
    pub async fn stop_server(&self, immediate: bool) -> Result<(), PlatformError> {
        let mode = if immediate { "immediate" } else { "fast" };
        self.pg_ctl(&["-m", mode, "-w", "-t", "60", "stop"]).await
    }
}

impl Drop for PgInstance {
    fn drop(&mut self) {
        let data = self.data();
        let _ = self
            .command(&self.bin.join("pg_ctl"))
            .arg("-D")
            .arg(&data)
            .args(["-m", "immediate", "-w", "stop"])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
