//! A network partition between this machine's clients and one loopback port of a test's own
//! server: `iptables` drops every packet to and from the port, so connections neither close nor
//! get refused; they hang as they do when a host or a link goes away. Refused connections (a
//! stopped server) are the easy case; this is the other one. Needs root and `iptables`
//! (`scripts/services.sh` installs it); the rules carry a comment naming the port and are
//! removed on `heal` and on drop.

use std::process::Stdio;

use tokio::process::Command;

use crate::platform::PlatformError;

const IPTABLES: &str = "iptables";

pub struct Partition {
    port: u16,
    active: bool,
}

impl Partition {
    /// A partition of `port`, not in effect yet.
    pub fn of_port(port: u16) -> Partition {
        Partition {
            port,
            active: false,
        }
    }

    /// The two rules: what reaches the port, and what leaves it.
    fn rules(&self) -> [Vec<String>; 2] {
        let port = self.port.to_string();
        let comment = format!("dialer-fault-partition-{port}");
        let rule = |chain: &str, side: &str| {
            [
                chain,
                "-p",
                "tcp",
                side,
                &port,
                "-m",
                "comment",
                "--comment",
                &comment,
                "-j",
                "DROP",
            ]
            .map(str::to_owned)
            .to_vec()
        };
        [rule("INPUT", "--dport"), rule("OUTPUT", "--sport")]
    }

    /// Drops every packet to and from the port from now on.
    pub async fn block(&mut self) -> Result<(), PlatformError> {
        for rule in self.rules() {
            iptables("-I", &rule).await?;
        }
        self.active = true;
        Ok(())
    }

    /// Lets packets through again; connections that were not timed out carry on.
    pub async fn heal(&mut self) -> Result<(), PlatformError> {
        for rule in self.rules() {
            iptables("-D", &rule).await?;
        }
        self.active = false;
        Ok(())
    }
}

async fn iptables(op: &str, rule: &[String]) -> Result<(), PlatformError> {
    let out = Command::new(IPTABLES)
        .arg("-w")
        .arg(op)
        .args(rule)
        .stdin(Stdio::null())
        .output()
        .await
        .map_err(|source| PlatformError::Spawn {
            name: IPTABLES.to_owned(),
            source,
        })?;
    match out.status.success() {
        true => Ok(()),
        false => Err(PlatformError::Database(format!(
            "iptables {op} {}: {}",
            rule.join(" "),
            String::from_utf8_lossy(&out.stderr)
        ))),
    }
}

impl Drop for Partition {
    fn drop(&mut self) {
        if self.active {
            for rule in self.rules() {
                let _ = std::process::Command::new(IPTABLES)
                    .arg("-w")
                    .arg("-D")
                    .args(&rule)
                    .stdout(Stdio::null())
                    .stderr(Stdio::null())
                    .status();
            }
        }
    }
}
