//! A connection's own thread: its socket read, written and kept alive by a runtime of its own,
//! so a caller's busy runtime (tasks that hog its workers, a backlog of events) cannot delay
//! the reads and writes whose moments the caller measures the PBX by (see
//! [`ClientConfig::io_thread`]).
//!
//! [`ClientConfig::io_thread`]: super::ClientConfig::io_thread

use std::future::Future;

use tokio::runtime::{Builder, Handle};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use super::error::AmiError;

/// A single-threaded runtime on a thread of its own; it runs until the task given to
/// [`IoThread::run`] ends, or this is dropped without one.
pub(super) struct IoThread {
    handle: Handle,
    stop: oneshot::Sender<()>,
}

impl IoThread {
    pub(super) fn start() -> Result<IoThread, AmiError> {
        let runtime = Builder::new_current_thread().enable_all().build()?;
        let handle = runtime.handle().clone();
        let (stop, stopped) = oneshot::channel::<()>();
        std::thread::Builder::new()
            .name("ami-io".into())
            .spawn(move || {
                runtime.block_on(async {
                    // Sent or dropped: either way the connection's task is over.
                    let _ = stopped.await;
                });
            })?;
        Ok(IoThread { handle, stop })
    }

    /// Runs `work` there and waits for its result (the thread stays up).
    pub(super) async fn block<T: Send + 'static>(
        &self,
        work: impl Future<Output = T> + Send + 'static,
    ) -> Result<T, AmiError> {
        self.handle.spawn(work).await.map_err(|_| AmiError::Closed)
    }

    /// Runs the connection's task there; the thread ends with it.
    pub(super) fn run(self, task: impl Future<Output = ()> + Send + 'static) -> JoinHandle<()> {
        let stop = self.stop;
        self.handle.spawn(async move {
            task.await;
            drop(stop);
        })
    }
}
