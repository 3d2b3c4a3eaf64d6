//! The simulated Asterisk servers of a local run: `ami-sim` processes on free loopback ports,
//! and what a run asks them through their control port (counters, faults, timelines).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use crate::platform::{Binaries, PlatformError, Processes, free_port, wait_for_tcp};

/// One simulated Asterisk server to start.
#[derive(Debug, Clone)]
pub struct SimSpec {
    pub code: String,
    pub config: Option<PathBuf>,
    pub instant_answer: bool,
}

impl SimSpec {
    /// `ast1` and `ast2`, alike.
    pub fn two(config: Option<PathBuf>, instant_answer: bool) -> [SimSpec; 2] {
        ["ast1", "ast2"].map(|code| SimSpec {
            code: code.to_owned(),
            config: config.clone(),
            instant_answer,
        })
    }
}

#[derive(Debug, Clone)]
pub struct RunningSim {
    pub code: String,
    pub ami: SocketAddr,
    pub control: SocketAddr,
}

impl RunningSim {
    /// One line to the simulator's control port (`stats`, `restart`, `stall`, `resume`...);
    /// its answer without the `OK ` prefix, or `None` when it refused or did not answer.
    pub async fn command(&self, line: &str) -> Option<String> {
        use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
        let stream = tokio::net::TcpStream::connect(self.control).await.ok()?;
        let (read, mut write) = stream.into_split();
        write.write_all(format!("{line}\n").as_bytes()).await.ok()?;
        let mut lines = BufReader::new(read).lines();
        let answer = lines.next_line().await.ok().flatten()?;
        answer
            .strip_prefix("OK")
            .map(|rest| rest.trim_start().to_owned())
    }

    /// The simulator's counters (`stats`: Originates by number and by channel id, prompts
    /// played, recordings uploaded...); `Null` when it does not answer.
    pub async fn stats(&self) -> serde_json::Value {
        self.command("stats")
            .await
            .and_then(|json| serde_json::from_str(&json).ok())
            .unwrap_or(serde_json::Value::Null)
    }

    /// Every Originate and every channel's creation and end on the simulator's wall clock
    /// (`timeline`), in Unix milliseconds.
    pub async fn timeline(&self) -> SimTimeline {
        let v: serde_json::Value = self
            .command("timeline")
            .await
            .and_then(|json| serde_json::from_str(&json).ok())
            .unwrap_or(serde_json::Value::Null);
        let since = v["since_unix_ms"].as_u64().unwrap_or(0);
        let rows = |key: &str| v[key].as_array().cloned().unwrap_or_default();
        SimTimeline {
            originates: rows("originates")
                .iter()
                .filter_map(|o| Some((since + o[0].as_u64()?, o[1].as_str()?.to_owned())))
                .collect(),
            channels: rows("channels")
                .iter()
                .filter_map(|c| {
                    Some((
                        since + c[0].as_u64()?,
                        c[1].as_str()?.to_owned(),
                        c[2].as_bool()?,
                    ))
                })
                .collect(),
        }
    }
}

/// [`RunningSim::timeline`]: Unix milliseconds.
#[derive(Debug, Clone, Default)]
pub struct SimTimeline {
    /// `(when, ChannelId)` of every Originate.
    pub originates: Vec<(u64, String)>,
    /// `(when, Uniqueid, created)`: each channel's creation and end.
    pub channels: Vec<(u64, String, bool)>,
}

/// Starts the simulators and waits until each accepts AMI connections.
pub async fn start_sims(
    bins: &Binaries,
    processes: &mut Processes,
    sims: &[SimSpec],
) -> Result<Vec<RunningSim>, PlatformError> {
    let mut running = Vec::new();
    for s in sims {
        let ami: SocketAddr = ([127, 0, 0, 1], free_port()?).into();
        let control: SocketAddr = ([127, 0, 0, 1], free_port()?).into();
        let mut args = vec![
            "--listen".to_owned(),
            ami.to_string(),
            "--control".to_owned(),
            control.to_string(),
        ];
        if let Some(c) = &s.config {
            args.push("--config".to_owned());
            args.push(c.display().to_string());
        }
        if s.instant_answer {
            args.push("--instant-answer".to_owned());
        }
        processes.spawn(
            &format!("ami-sim-{}", s.code),
            &bins.path("ami-sim"),
            &args,
            &[],
        )?;
        running.push(RunningSim {
            code: s.code.clone(),
            ami,
            control,
        });
    }
    for r in &running {
        wait_for_tcp(r.ami, Duration::from_secs(20), processes).await?;
    }
    Ok(running)
}
