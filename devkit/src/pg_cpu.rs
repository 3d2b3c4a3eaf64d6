//! CPU time used by the PostgreSQL server a run talks to, read from `/proc`: every live process
//! of the server (the postmaster and its children) plus what its exited children used (the
//! postmaster's `cutime`/`cstime`, which an autovacuum worker or a closed connection's backend
//! adds to when it ends). The server is found by its `postmaster.pid`; when the data directory
//! cannot be read (not a superuser, another host), every process named `postgres` counts.

use std::path::PathBuf;

use diesel::sql_types::Text;
use diesel_async::RunQueryDsl;

use dialer_core::db::DbPool;

/// How the server's processes are found.
#[derive(Debug, Clone)]
pub struct PgServer {
    postmaster: Option<u32>,
    ticks_per_second: f64,
}

#[derive(diesel::QueryableByName)]
struct Setting {
    #[diesel(sql_type = Text)]
    data_directory: String,
}

impl PgServer {
    /// The server behind `pool`.
    pub async fn find(pool: &DbPool) -> PgServer {
        let postmaster = match pool.get().await {
            Ok(mut conn) => diesel::sql_query("SHOW data_directory")
                .get_result::<Setting>(&mut conn)
                .await
                .ok()
                .and_then(|s| {
                    let pid_file = PathBuf::from(s.data_directory).join("postmaster.pid");
                    std::fs::read_to_string(pid_file).ok()
                })
                .and_then(|t| t.lines().next()?.trim().parse().ok()),
            Err(_) => None,
        };
        // SAFETY: sysconf has no preconditions; it only reads a system constant.
        let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
        PgServer {
            postmaster,
            ticks_per_second: if ticks > 0 { ticks as f64 } else { 100.0 },
        }
    }

    /// Whether the figures cover exactly this server (else: every `postgres` process).
    pub fn exact(&self) -> bool {
        self.postmaster.is_some()
    }

    /// CPU seconds a second the server uses while the platform idles (polls, leases, sweeps),
    /// over `span` after a 2 s settling pause: the baseline a run's figure is taken off.
    pub async fn idle_rate(&self, span: std::time::Duration) -> f64 {
        tokio::time::sleep(std::time::Duration::from_secs(2)).await;
        let start = self.cpu_seconds();
        tokio::time::sleep(span).await;
        (self.cpu_seconds() - start) / span.as_secs_f64().max(1e-3)
    }

    /// CPU seconds the server has used so far (user + system), exited children included.
    pub fn cpu_seconds(&self) -> f64 {
        let mut ticks = 0u64;
        let Ok(dir) = std::fs::read_dir("/proc") else {
            return 0.0;
        };
        for entry in dir.flatten() {
            let Some(pid) = entry
                .file_name()
                .to_str()
                .and_then(|s| s.parse::<u32>().ok())
            else {
                continue;
            };
            let Some(stat) = ProcStat::read(pid) else {
                continue;
            };
            let counted = match self.postmaster {
                Some(pm) => pid == pm || stat.ppid == pm,
                None => stat.comm == "postgres",
            };
            if counted {
                ticks += stat.utime + stat.stime;
                if Some(pid) == self.postmaster {
                    ticks += stat.cutime + stat.cstime;
                }
            }
        }
        ticks as f64 / self.ticks_per_second
    }
}

/// The fields of `/proc/<pid>/stat` used here.
#[derive(Debug, PartialEq, Eq)]
struct ProcStat {
    comm: String,
    ppid: u32,
    utime: u64,
    stime: u64,
    cutime: u64,
    cstime: u64,
}

impl ProcStat {
    fn read(pid: u32) -> Option<ProcStat> {
        ProcStat::parse(&std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?)
    }

    /// `pid (comm) state ppid ...`: comm may hold spaces and parentheses, so the fields after it
    /// are counted from its last `)`.
    fn parse(text: &str) -> Option<ProcStat> {
        let open = text.find('(')?;
        let close = text.rfind(')')?;
        let comm = text.get(open + 1..close)?.to_owned();
        let rest: Vec<&str> = text.get(close + 1..)?.split_whitespace().collect();
        // rest[0] is field 3 (state); field n is rest[n - 3].
        let field = |n: usize| rest.get(n - 3)?.parse::<u64>().ok();
        Some(ProcStat {
            comm,
            ppid: u32::try_from(field(4)?).ok()?,
            utime: field(14)?,
            stime: field(15)?,
            cutime: field(16)?,
            cstime: field(17)?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_fields_are_counted_after_the_command_name() {
        let line = "4242 (postgres: a) b) S 17 4242 4242 0 -1 4194560 1 0 0 0 \
                    120 30 7 3 20 0 1 0 100 0 0";
        assert_eq!(
            ProcStat::parse(line),
            Some(ProcStat {
                comm: "postgres: a) b".to_owned(),
                ppid: 17,
                utime: 120,
                stime: 30,
                cutime: 7,
                cstime: 3,
            })
        );
        assert_eq!(ProcStat::parse("garbage"), None);
    }

    #[test]
    fn this_process_reads_its_own_stat() {
        let me = ProcStat::read(std::process::id()).expect("own /proc stat");
        assert!(me.ppid > 0);
    }
}
