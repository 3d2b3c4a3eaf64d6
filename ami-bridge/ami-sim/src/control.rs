//! The control port: one command per line, one reply line per command (`OK ...` or `ERR ...`).
//! See README.md for the commands.

use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

use crate::handle::SimHandle;

pub(crate) async fn serve(sim: SimHandle, listener: TcpListener, mut stop: watch::Receiver<bool>) {
    loop {
        tokio::select! {
            _ = stop.changed() => return,
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => {
                    tokio::spawn(connection(sim.clone(), stream));
                }
                Err(e) => {
                    tracing::warn!(error = %e, "control accept failed");
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
            }
        }
    }
}

async fn connection(sim: SimHandle, stream: TcpStream) {
    let (rd, mut wr) = stream.into_split();
    let mut lines = BufReader::new(rd).lines();
    while let Ok(Some(line)) = lines.next_line().await {
        let (reply, quit) = execute(&sim, line.trim()).await;
        if wr.write_all(format!("{reply}\n").as_bytes()).await.is_err() || quit {
            return;
        }
    }
}

/// Runs one control command; `(reply, close)`.
pub async fn execute(sim: &SimHandle, line: &str) -> (String, bool) {
    let mut words = line.split_whitespace();
    let cmd = words.next().unwrap_or("").to_ascii_lowercase();
    let arg = words.next();
    let reply = match cmd.as_str() {
        "" => return (String::new(), false),
        "ping" => "OK pong".to_string(),
        "stats" => match serde_json::to_string(&sim.stats()) {
            Ok(json) => format!("OK {json}"),
            Err(e) => format!("ERR {e}"),
        },
        "timeline" => match serde_json::to_string(&sim.timeline()) {
            Ok(json) => format!("OK {json}"),
            Err(e) => format!("ERR {e}"),
        },
        "channels" => format!("OK {}", sim.current_channels()),
        "sessions" => format!("OK {}", sim.sessions()),
        "max-window" => match arg.and_then(|a| a.parse::<u64>().ok()) {
            Some(ms) => format!(
                "OK {}",
                sim.max_originates_in_window(Duration::from_millis(ms))
            ),
            None => "ERR usage: max-window <milliseconds>".to_string(),
        },
        "reset-stats" => {
            sim.reset_stats();
            "OK".to_string()
        }
        "drop" => {
            sim.drop_connections();
            "OK".to_string()
        }
        "stall" => {
            sim.stall();
            "OK".to_string()
        }
        "resume" => {
            sim.resume();
            "OK".to_string()
        }
        "garbage" => {
            sim.send_garbage();
            "OK".to_string()
        }
        "restart" => {
            sim.restart().await;
            "OK".to_string()
        }
        "refuse-logins" => match arg.map(str::to_ascii_lowercase).as_deref() {
            Some("on") => {
                sim.refuse_logins(true);
                "OK".to_string()
            }
            Some("off") => {
                sim.refuse_logins(false);
                "OK".to_string()
            }
            _ => "ERR usage: refuse-logins on|off".to_string(),
        },
        "quit" => return ("OK bye".to_string(), true),
        "help" => "OK commands: ping stats timeline channels sessions max-window <ms> reset-stats drop stall resume garbage restart refuse-logins on|off quit".to_string(),
        other => format!("ERR unknown command {other}"),
    };
    (reply, false)
}
