//! `dialerctl demo` and `dialerctl bench`: thin entry points to the developer kit. They run the
//! `dialer-devkit` binary found beside this one with the same arguments, so the API crate
//! carries none of the harness (process control, a signature-checking receiver).

use std::ffi::OsString;
use std::path::PathBuf;
use std::process::{Command, ExitCode};

use anyhow::{Context, bail};
use clap::Args;

/// The binary of the developer kit (`devkit/` in the workspace).
const DEVKIT: &str = "dialer-devkit";

#[derive(Args)]
pub struct Forwarded {
    /// Options of `dialer-devkit <command>`; `--help` lists them.
    #[arg(trailing_var_arg = true, allow_hyphen_values = true, num_args = 0..)]
    args: Vec<OsString>,
}

/// Runs `dialer-devkit <command> [--json] <args>`; its exit code is this program's.
pub fn run(command: &str, forwarded: Forwarded, as_json: bool) -> anyhow::Result<ExitCode> {
    let program = devkit_path()?;
    let mut cmd = Command::new(&program);
    cmd.arg(command);
    if as_json {
        cmd.arg("--json");
    }
    cmd.args(forwarded.args);
    exec(cmd).with_context(|| format!("cannot run {}", program.display()))
}

fn devkit_path() -> anyhow::Result<PathBuf> {
    let exe = std::env::current_exe().context("where dialerctl is")?;
    let dir = exe.parent().map(PathBuf::from).unwrap_or_default();
    let program = dir.join(DEVKIT);
    if !program.is_file() {
        bail!(
            "{DEVKIT} not found beside dialerctl in {}: build the binaries first (`cargo build --release --bins`)",
            dir.display()
        );
    }
    Ok(program)
}

/// Replaces this process (a Ctrl-C then reaches the devkit alone, which stops its children in
/// order); returns only when that fails.
#[cfg(unix)]
fn exec(mut cmd: Command) -> std::io::Result<ExitCode> {
    use std::os::unix::process::CommandExt;
    Err(cmd.exec())
}

#[cfg(not(unix))]
fn exec(mut cmd: Command) -> std::io::Result<ExitCode> {
    let status = cmd.status()?;
    Ok(ExitCode::from(
        status
            .code()
            .and_then(|c| u8::try_from(c).ok())
            .unwrap_or(1),
    ))
}
