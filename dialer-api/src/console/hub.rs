//! One live snapshot per process, shared by every console page it serves: a task builds it
//! every [`INTERVAL`] while at least one page watches (and [`LINGER`] after the last leaves, so
//! a reload finds it warm), and stops otherwise, so an API nobody watches spends nothing on it.
//! A build that takes long spaces the next ones out (at most a fifth of the time busy), so a
//! slow database is not made slower by the console.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use tokio::sync::{Notify, watch};

use dialer_core::db::DbPool;

use crate::console::series::SeriesCache;
use crate::console::snapshot;

pub const INTERVAL: Duration = Duration::from_secs(2);
const LINGER: Duration = Duration::from_secs(10);
/// Busy at most 1 part in this many.
const BUSY_SHARE: u32 = 5;

/// The snapshot as JSON text, `None` until the first build of a run.
pub type Latest = Option<Arc<str>>;

pub struct Hub {
    latest: watch::Sender<Latest>,
    running: AtomicBool,
    /// Build now (an action just changed something).
    poke: Notify,
    /// Ends every stream (the process is stopping).
    closing: watch::Sender<bool>,
}

impl Default for Hub {
    fn default() -> Self {
        Hub {
            latest: watch::Sender::new(None),
            running: AtomicBool::new(false),
            poke: Notify::new(),
            closing: watch::Sender::new(false),
        }
    }
}

impl Hub {
    /// Watches the snapshot; starts the building task when none runs.
    pub fn subscribe(self: &Arc<Self>, pool: &DbPool) -> watch::Receiver<Latest> {
        let rx = self.latest.subscribe();
        if !self.running.swap(true, Ordering::SeqCst) {
            let (hub, pool) = (self.clone(), pool.clone());
            actix_web::rt::spawn(async move { hub.run(pool).await });
        }
        rx
    }

    /// Builds the next snapshot now instead of at its time.
    pub fn poke(&self) {
        self.poke.notify_one();
    }

    /// Whether the process is stopping, to end streams.
    pub fn closing(&self) -> watch::Receiver<bool> {
        self.closing.subscribe()
    }

    /// Ends every stream: an open stream would hold the server's graceful stop for its whole
    /// timeout.
    pub fn close(&self) {
        self.closing.send_replace(true);
    }

    async fn run(&self, pool: DbPool) {
        let mut idle_since: Option<Instant> = None;
        let mut series = SeriesCache::default();
        loop {
            if self.latest.receiver_count() > 0 {
                idle_since = None;
            } else if idle_since.get_or_insert_with(Instant::now).elapsed() >= LINGER {
                // A stale snapshot must not greet the next page as if current.
                self.latest.send_replace(None);
                self.running.store(false, Ordering::SeqCst);
                // A page that subscribed meanwhile either saw `running` false and started a
                // task, or is seen here, and this one goes on.
                if self.latest.receiver_count() == 0 || self.running.swap(true, Ordering::SeqCst) {
                    return;
                }
                idle_since = None;
            }
            let started = Instant::now();
            match snapshot::build(&pool, &mut series).await {
                Ok(s) => match serde_json::to_string(&s) {
                    Ok(text) => {
                        self.latest.send_replace(Some(text.into()));
                    }
                    Err(e) => tracing::error!(error = %e, "console snapshot not serialised"),
                },
                Err(e) => tracing::warn!(error = %e, "console snapshot not built"),
            }
            let pause = INTERVAL.max(started.elapsed() * (BUSY_SHARE - 1));
            tokio::select! {
                _ = tokio::time::sleep(pause) => {}
                _ = self.poke.notified() => {}
            }
        }
    }
}

/// Ends the console's streams when the process is told to stop (SIGTERM, Ctrl-C), so the
/// server's graceful stop is not held by pages that never close on their own.
pub async fn close_on_signal(hub: Arc<Hub>) {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = term.recv() => {}
                    _ = tokio::signal::ctrl_c() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
    hub.close();
}
