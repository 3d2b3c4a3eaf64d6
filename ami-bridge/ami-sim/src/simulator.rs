//! Starting a simulator: the AMI listener, the optional control port, and stopping them.

use std::net::SocketAddr;
use std::ops::Deref;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::config::{ConfigError, SimConfig};
use crate::handle::SimHandle;
use crate::pbx::{Fault, Pbx};
use crate::{control, faults, session};

#[derive(Debug, thiserror::Error)]
pub enum SimError {
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    Pbx(#[from] crate::pbx::PbxError),
}

/// A running simulator. Dropping it stops accepting; `shutdown` also closes every session.
pub struct Simulator {
    handle: SimHandle,
    stop: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
}

impl Simulator {
    /// Binds the AMI port (and the control port if configured) and starts serving.
    pub async fn start(cfg: SimConfig) -> Result<Simulator, SimError> {
        cfg.validate()?;
        let listener = TcpListener::bind(cfg.listen)
            .await
            .map_err(|source| SimError::Bind {
                addr: cfg.listen,
                source,
            })?;
        let addr = listener.local_addr().map_err(|source| SimError::Bind {
            addr: cfg.listen,
            source,
        })?;
        let control_listener = match cfg.control {
            Some(c) => Some(
                TcpListener::bind(c)
                    .await
                    .map_err(|source| SimError::Bind { addr: c, source })?,
            ),
            None => None,
        };
        let control_addr = match &control_listener {
            Some(l) => Some(
                l.local_addr()
                    .map_err(|source| SimError::Bind { addr, source })?,
            ),
            None => None,
        };
        let pbx = Pbx::new(cfg)?;
        let handle = SimHandle {
            pbx: pbx.clone(),
            addr,
            control_addr,
        };
        let (stop, stop_rx) = watch::channel(false);
        let mut tasks = vec![tokio::spawn(accept_loop(pbx, listener, stop_rx.clone()))];
        if let Some(l) = control_listener {
            tasks.push(tokio::spawn(control::serve(handle.clone(), l, stop_rx)));
        }
        tracing::info!(%addr, ?control_addr, "ami-sim listening");
        Ok(Simulator {
            handle,
            stop,
            tasks,
        })
    }

    pub fn handle(&self) -> SimHandle {
        self.handle.clone()
    }

    /// Stops listening, ends every call and closes every session.
    pub async fn shutdown(mut self) {
        let _ = self.stop.send(true);
        for t in &self.tasks {
            t.abort();
        }
        self.handle.pbx.shutdown_calls();
        faults::send(&self.handle.pbx, Fault::Drop);
        for t in std::mem::take(&mut self.tasks) {
            let _ = t.await;
        }
    }
}

impl Drop for Simulator {
    fn drop(&mut self) {
        let _ = self.stop.send(true);
        for t in &self.tasks {
            t.abort();
        }
    }
}

impl Deref for Simulator {
    type Target = SimHandle;
    fn deref(&self) -> &SimHandle {
        &self.handle
    }
}

async fn accept_loop(pbx: Arc<Pbx>, listener: TcpListener, mut stop: watch::Receiver<bool>) {
    loop {
        tokio::select! {
            _ = stop.changed() => return,
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => {
                    if pbx.down.load(Ordering::SeqCst) {
                        // Restarting: like a server that is not there yet.
                        drop(stream);
                        continue;
                    }
                    let local = stream.local_addr().unwrap_or(peer);
                    tokio::spawn(session::serve(pbx.clone(), stream, peer, local));
                }
                Err(e) => {
                    // Out of file descriptors and the like: do not spin.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
            }
        }
    }
}
