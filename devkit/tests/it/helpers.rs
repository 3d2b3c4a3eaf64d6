//! Where the tests find the repository, the platform's binaries and Python.

use std::path::{Path, PathBuf};

use dialer_devkit::platform::Binaries;

pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// The workspace's binaries in the target directory this test runs from (`target/debug`, the
/// parent of the test's `deps/`); built here when they are missing (`cargo nextest run
/// --workspace` builds them first, a run of this package alone does not).
pub fn binaries() -> Binaries {
    if let Ok(b) = Binaries::of_current_exe() {
        return b;
    }
    let exe = std::env::current_exe().expect("the test's own path");
    // target/<profile>/deps/it-<hash>
    let release = exe
        .parent()
        .and_then(Path::parent)
        .and_then(Path::file_name)
        .is_some_and(|d| d == "release");
    let mut cmd = std::process::Command::new(std::env::var("CARGO").unwrap_or("cargo".into()));
    cmd.current_dir(repo_root())
        .args(["build", "--bins", "--workspace"]);
    if release {
        cmd.arg("--release");
    }
    let status = cmd.status().expect("run cargo build");
    assert!(status.success(), "building the platform's binaries failed");
    Binaries::of_current_exe().expect("binaries after the build")
}

/// The interpreter of the Python examples (`scripts/test` sets it).
pub fn python() -> String {
    std::env::var("DIALER_PYTHON").unwrap_or_else(|_| "python3".to_owned())
}

/// `GET` a `/metrics` page.
pub async fn scrape(url: &str) -> String {
    reqwest::get(url)
        .await
        .unwrap_or_else(|e| panic!("{url}: {e}"))
        .text()
        .await
        .expect("metrics text")
}

/// The samples of metric `name` (Prometheus text format) by the value of label `label`, summed
/// over the other labels.
pub fn by_label(text: &str, name: &str, label: &str) -> std::collections::BTreeMap<String, f64> {
    let mut out = std::collections::BTreeMap::new();
    for line in text.lines() {
        let Some(rest) = line.strip_prefix(name) else {
            continue;
        };
        let Some(labels) = rest.strip_prefix('{') else {
            continue;
        };
        let Some((labels, value)) = labels.split_once("} ") else {
            continue;
        };
        let wanted = format!("{label}=\"");
        let Some(start) = labels.find(&wanted) else {
            continue;
        };
        let from = &labels[start + wanted.len()..];
        let key = from.split('"').next().unwrap_or_default().to_owned();
        let value: f64 = value.trim().parse().unwrap_or_else(|_| panic!("{line}"));
        *out.entry(key).or_insert(0.0) += value;
    }
    out
}

/// The services of a test's platform (one of each) on its database and queue names, lean for a
/// 2-core machine (4 connections per pool, one API worker), with `extra` added to their
/// environment.
pub async fn start_lean_services(
    bins: &Binaries,
    processes: &mut dialer_devkit::platform::Processes,
    env: &dialer_core::test_support::TestEnv,
    extra: Vec<(String, String)>,
) -> dialer_devkit::platform::RunningServices {
    let mut vars = vec![
        ("DIALER_DB_POOL_SIZE".to_owned(), "4".to_owned()),
        ("DIALER_API_WORKERS".to_owned(), "1".to_owned()),
    ];
    vars.extend(extra);
    dialer_devkit::platform::start_services(
        bins,
        processes,
        &dialer_devkit::platform::ServiceEnv {
            database_url: env.config.database_url.clone(),
            amqp_url: env.config.amqp_url.clone(),
            queue_prefix: env.config.queue_prefix.clone(),
            extra: vars,
        },
        dialer_devkit::platform::Scale::ONE,
    )
    .await
    .expect("services")
}

/// Rows `range` of examples/batch.json (numbers the demo simulators answer) as a batch of its own.
pub fn batch_slice(batch_id: i64, range: std::ops::Range<usize>) -> serde_json::Value {
    let text =
        std::fs::read_to_string(repo_root().join("examples/batch.json")).expect("batch.json");
    let mut batch: serde_json::Value = serde_json::from_str(&text).expect("batch.json is JSON");
    let rows = batch["data"].as_array().expect("data")[range].to_vec();
    batch["data"] = serde_json::Value::Array(rows);
    batch["batch_id"] = serde_json::json!(batch_id);
    batch
}

/// A run's binaries, its processes (logs under a directory named for `name` and the run's
/// queue prefix) and the two demo simulators, started.
pub async fn two_demo_sims(
    env: &dialer_core::test_support::TestEnv,
    name: &str,
) -> (
    Binaries,
    PathBuf,
    dialer_devkit::platform::Processes,
    Vec<dialer_devkit::sims::RunningSim>,
) {
    let bins = binaries();
    let logs = std::env::temp_dir().join(format!("dialer-{name}-{}", env.config.queue_prefix));
    let mut processes = dialer_devkit::platform::Processes::new(&logs).expect("log dir");
    let sims = dialer_devkit::platform::start_sims(
        &bins,
        &mut processes,
        &dialer_devkit::platform::SimSpec::two(
            Some(repo_root().join("examples/ami-sim/demo.toml")),
            false,
        ),
    )
    .await
    .expect("simulators");
    (bins, logs, processes, sims)
}
