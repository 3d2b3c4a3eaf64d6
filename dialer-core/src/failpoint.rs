//! Crash points for durability tests: `DIALER_FAILPOINTS=name,...` makes the process exit at
//! once (no destructors, no pending work finished, like a `kill -9`; `exit` rather than
//! `abort` so no core file is left behind) when it reaches a named point. Unset in production.

/// Ends the process if `name` is listed in `DIALER_FAILPOINTS`.
pub fn hit(name: &str) {
    if let Ok(list) = std::env::var("DIALER_FAILPOINTS")
        && list.split(',').any(|p| p.trim() == name)
    {
        eprintln!("failpoint `{name}` reached: exiting");
        std::process::exit(137);
    }
}
