//! `dialer-client`: submit a batch to the dialer, dispatch it and follow it until every call has
//! its final outcome, written from the client contract alone (`shared/CONTRACT.md`).
//!
//! ```text
//! dialer-client --base-url http://127.0.0.1:8080 --api-key KEY --batch examples/batch.json \
//!     --dispatch [--poll-seconds 2] [--timeout 600]
//! ```
//!
//! Exit codes: 0 every call reached its final outcome; 1 an API or network error (the API's
//! JSON error body is printed); 2 `--timeout` passed first; 3 a bad batch file.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use clap::Parser;
use reqwest::{Method, StatusCode};
use serde::Deserialize;
use serde_json::{Map, Value, json};

const API: &str = "/api/v1";
/// Rows per submission when the account does not say (GET /account).
const DEFAULT_CHUNK: usize = 1000;
/// Calls per page when listing a batch's calls for the summary.
const PAGE_SIZE: u32 = 100;
/// Tries of one request that is rate limited (429) or cannot connect.
const MAX_TRIES: u32 = 6;

#[derive(Parser, Debug)]
#[command(
    name = "dialer-client",
    about = "Submit a batch, dispatch it and poll it until every call is final"
)]
struct Args {
    /// API base URL, e.g. http://127.0.0.1:8080.
    #[arg(long, env = "DIALER_BASE_URL")]
    base_url: String,
    /// The account's API key.
    #[arg(long, env = "DIALER_API_KEY", hide_env_values = true)]
    api_key: String,
    /// JSON file: a submit-batch request body (`batch_id`, `data`, optional settings).
    #[arg(long)]
    batch: PathBuf,
    /// Use this `batch_id` instead of the file's.
    #[arg(long)]
    batch_id: Option<u64>,
    /// Dispatch the batch after submitting it.
    #[arg(long)]
    dispatch: bool,
    /// Seconds between status polls.
    #[arg(long, default_value_t = 2.0)]
    poll_seconds: f64,
    /// Give up waiting after this many seconds (exit code 2).
    #[arg(long, default_value_t = 600.0)]
    timeout: f64,
    /// Seconds allowed for one HTTP request.
    #[arg(long, default_value_t = 30.0)]
    request_timeout: f64,
}

/// A non-2xx answer, with the API's error body (`{"status":"error","code":...,"message":...}`).
#[derive(Debug)]
struct ApiError {
    method: Method,
    url: String,
    status: StatusCode,
    body: Value,
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let code = self.body.get("code").and_then(Value::as_str).unwrap_or("?");
        let message = self
            .body
            .get("message")
            .and_then(Value::as_str)
            .unwrap_or("");
        write!(
            f,
            "{} {} -> HTTP {} {code}: {message}",
            self.method,
            self.url,
            self.status.as_u16()
        )
    }
}

impl std::error::Error for ApiError {}

/// The part of the batch status this client reads (unknown fields are ignored).
#[derive(Debug, Deserialize, Default)]
#[serde(default)]
struct BatchStatus {
    batch_status: String,
    waiting_reason: Option<String>,
    total_calls: i64,
    completed_calls: i64,
    failed_calls: i64,
    pending_calls: i64,
    counts: BTreeMap<String, i64>,
    calls: Vec<Value>,
    next_cursor: Option<String>,
}

impl BatchStatus {
    fn is_done(&self) -> bool {
        matches!(self.batch_status.as_str(), "completed" | "cancelled")
            || (self.total_calls > 0 && self.pending_calls == 0)
    }

    fn progress(&self) -> String {
        let mut line = format!(
            "{}: total={} completed={} failed={} pending={}",
            self.batch_status,
            self.total_calls,
            self.completed_calls,
            self.failed_calls,
            self.pending_calls
        );
        let nonzero: Vec<String> = self
            .counts
            .iter()
            .filter(|(_, n)| **n != 0)
            .map(|(k, n)| format!("{k}={n}"))
            .collect();
        if !nonzero.is_empty() {
            line.push_str(" | ");
            line.push_str(&nonzero.join(" "));
        }
        if let Some(why) = &self.waiting_reason {
            line.push_str(" | waiting: ");
            line.push_str(why);
        }
        line
    }
}

struct Client {
    http: reqwest::Client,
    base: String,
    api_key: String,
}

impl Client {
    fn new(base_url: &str, api_key: &str, timeout: Duration) -> anyhow::Result<Client> {
        if base_url.starts_with("https:") {
            bail!(
                "this example is built without TLS; enable reqwest's `rustls` feature in its Cargo.toml for https"
            );
        }
        let http = reqwest::Client::builder()
            .timeout(timeout)
            .build()
            .context("building the HTTP client")?;
        Ok(Client {
            http,
            base: base_url.trim_end_matches('/').to_owned(),
            api_key: api_key.to_owned(),
        })
    }

    /// One API call; 429 (after `Retry-After`) and connection failures are tried again.
    async fn request(
        &self,
        method: Method,
        path: &str,
        query: &[(&str, String)],
        body: Option<&Value>,
    ) -> anyhow::Result<Value> {
        let mut url = reqwest::Url::parse(&format!("{}{path}", self.base))
            .with_context(|| format!("bad URL {}{path}", self.base))?;
        if !query.is_empty() {
            url.query_pairs_mut().extend_pairs(query);
        }
        let mut tries = 0;
        loop {
            tries += 1;
            let mut req = self
                .http
                .request(method.clone(), url.clone())
                .header("X-API-KEY", &self.api_key)
                .header("Accept", "application/json");
            if let Some(b) = body {
                req = req.json(b);
            }
            let resp = match req.send().await {
                Ok(r) => r,
                Err(e) if (e.is_connect() || e.is_timeout()) && tries < MAX_TRIES => {
                    let delay = Duration::from_secs(1 << tries.min(3));
                    eprintln!("  {method} {path}: {e}; trying again in {delay:?}");
                    tokio::time::sleep(delay).await;
                    continue;
                }
                Err(e) => return Err(e).with_context(|| format!("{method} {url}")),
            };
            let status = resp.status();
            let retry_after = resp
                .headers()
                .get("retry-after")
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.trim().parse::<f64>().ok());
            let text = resp
                .text()
                .await
                .with_context(|| format!("{method} {url}: reading the answer"))?;
            let value: Value = serde_json::from_str(&text).unwrap_or(Value::String(text));
            if status == StatusCode::TOO_MANY_REQUESTS && tries < MAX_TRIES {
                let delay = Duration::from_secs_f64(retry_after.unwrap_or(1.0).clamp(0.0, 60.0));
                eprintln!("  {method} {path}: 429, trying again in {delay:?}");
                tokio::time::sleep(delay).await;
                continue;
            }
            if !status.is_success() {
                return Err(ApiError {
                    method,
                    url: url.to_string(),
                    status,
                    body: value,
                }
                .into());
            }
            return Ok(value);
        }
    }

    async fn status(
        &self,
        batch_id: &Value,
        query: &[(&str, String)],
    ) -> anyhow::Result<BatchStatus> {
        let v = self
            .request(
                Method::GET,
                &format!("{API}/queues/batch-status/{batch_id}"),
                query,
                None,
            )
            .await?;
        serde_json::from_value(v).context("reading the batch status")
    }

    /// The account's row limit per submission, else [`DEFAULT_CHUNK`].
    async fn rows_per_request(&self) -> anyhow::Result<usize> {
        match self
            .request(Method::GET, &format!("{API}/account"), &[], None)
            .await
        {
            Ok(v) => {
                let acc = &v["account"];
                let limit = acc["limits"]["max_rows_per_request"]
                    .as_u64()
                    .or_else(|| acc["max_rows_per_request"].as_u64());
                Ok(limit
                    .filter(|n| *n > 0)
                    .map_or(DEFAULT_CHUNK, |n| n as usize))
            }
            // A wrong key fails here, before anything is sent.
            Err(e)
                if e.downcast_ref::<ApiError>()
                    .is_some_and(|a| matches!(a.status.as_u16(), 401 | 403)) =>
            {
                Err(e)
            }
            Err(e) => {
                eprintln!("  GET /account failed ({e}); sending {DEFAULT_CHUNK} rows per request");
                Ok(DEFAULT_CHUNK)
            }
        }
    }
}

#[derive(Default)]
struct Submitted {
    accepted: u64,
    duplicates: u64,
    rejected: Vec<Value>,
    total_calls: Option<i64>,
}

/// Sends the batch in chunks of the account's row limit (a 413 halves the chunk). Every chunk
/// carries the same `batch_id` and settings; rows already in the batch count as duplicates, so
/// sending a chunk again after a timeout never makes a second call.
async fn submit(
    client: &Client,
    settings: &Map<String, Value>,
    rows: &[Value],
) -> anyhow::Result<Submitted> {
    let mut chunk = client.rows_per_request().await?.min(rows.len()).max(1);
    let mut out = Submitted::default();
    let mut start = 0;
    loop {
        let part = &rows[start..(start + chunk).min(rows.len())];
        let mut body = settings.clone();
        body.insert("data".into(), Value::Array(part.to_vec()));
        let res = client
            .request(
                Method::POST,
                &format!("{API}/queues/insertdataincallqueue/"),
                &[],
                Some(&Value::Object(body)),
            )
            .await;
        let v = match res {
            Err(e)
                if chunk > 1
                    && e.downcast_ref::<ApiError>()
                        .is_some_and(|a| a.status == StatusCode::PAYLOAD_TOO_LARGE) =>
            {
                chunk /= 2;
                println!("  413 payload_too_large: trying again with {chunk} rows per request");
                continue;
            }
            other => other?,
        };
        let rejected = v["rejected"].as_array().cloned().unwrap_or_default();
        println!(
            "submitted rows {}..{}: accepted={} duplicates={} rejected={} total_calls={}",
            start,
            (start + part.len()).max(1) - 1,
            v["accepted"],
            v["duplicates"],
            rejected.len(),
            v["total_calls"]
        );
        out.accepted += v["accepted"].as_u64().unwrap_or(0);
        out.duplicates += v["duplicates"].as_u64().unwrap_or(0);
        out.total_calls = v["total_calls"].as_i64();
        for mut r in rejected {
            // Indexes are per request; make them indexes into the whole file.
            if let Some(i) = r["index"].as_u64() {
                r["index"] = json!(i + start as u64);
            }
            out.rejected.push(r);
        }
        start += part.len();
        if start >= rows.len() {
            return Ok(out);
        }
    }
}

async fn summary(client: &Client, batch_id: &Value, st: &BatchStatus) -> anyhow::Result<()> {
    let mut by_status: BTreeMap<String, u64> = BTreeMap::new();
    let mut by_disposition: BTreeMap<String, u64> = BTreeMap::new();
    let mut retried = 0;
    let mut cursor: Option<String> = None;
    loop {
        let mut query = vec![("limit", PAGE_SIZE.to_string())];
        if let Some(c) = &cursor {
            query.push(("cursor", c.clone()));
        }
        let page = client.status(batch_id, &query).await?;
        for call in &page.calls {
            let text = |k: &str| call[k].as_str().unwrap_or("-").to_owned();
            *by_status.entry(text("call_status")).or_default() += 1;
            *by_disposition.entry(text("disposition")).or_default() += 1;
            if call["attempt"].as_i64().unwrap_or(1) > 1 {
                retried += 1;
            }
        }
        cursor = page.next_cursor;
        if cursor.is_none() {
            break;
        }
    }
    let fmt = |m: &BTreeMap<String, u64>| {
        let mut v: Vec<_> = m.iter().collect();
        v.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
        v.iter()
            .map(|(k, n)| format!("{k}={n}"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    println!();
    println!("batch {batch_id}: {}", st.batch_status);
    println!(
        "  total_calls={} completed_calls={} failed_calls={} pending_calls={}",
        st.total_calls, st.completed_calls, st.failed_calls, st.pending_calls
    );
    println!("  call_status:  {}", fmt(&by_status));
    println!("  disposition:  {}", fmt(&by_disposition));
    println!("  calls that needed more than one attempt: {retried}");
    Ok(())
}

enum Outcome {
    Done,
    TimedOut,
}

async fn run(args: &Args, body: Map<String, Value>) -> anyhow::Result<Outcome> {
    let client = Client::new(
        &args.base_url,
        &args.api_key,
        Duration::from_secs_f64(args.request_timeout.max(0.1)),
    )?;
    let started = Instant::now();
    let batch_id = body["batch_id"].clone();
    let rows = body["data"].as_array().cloned().unwrap_or_default();
    let mut settings = body;
    settings.remove("data");

    let res = submit(&client, &settings, &rows).await?;
    println!(
        "batch {batch_id}: accepted={} duplicates={} rejected={} total_calls={}",
        res.accepted,
        res.duplicates,
        res.rejected.len(),
        res.total_calls.map_or("?".into(), |n| n.to_string())
    );
    for r in res.rejected.iter().take(20) {
        println!(
            "  rejected row {}: {} {}",
            r["index"], r["phone_number"], r["reason"]
        );
    }
    if res.rejected.len() > 20 {
        println!("  ... and {} more", res.rejected.len() - 20);
    }

    if args.dispatch {
        let d = client
            .request(
                Method::POST,
                &format!("{API}/controls/dispatch-calls"),
                &[],
                Some(&json!({ "batch_id": batch_id })),
            )
            .await?;
        println!("dispatched: {} batch(es) {}", d["dispatched"], d["batches"]);
    }

    let deadline = started + Duration::from_secs_f64(args.timeout.max(0.0));
    let poll = Duration::from_secs_f64(args.poll_seconds.max(0.1));
    let mut last = String::new();
    let mut warned_pending = false;
    loop {
        let st = client.status(&batch_id, &[("limit", "1".into())]).await?;
        let line = st.progress();
        if line != last {
            println!("[{:6.1}s] {line}", started.elapsed().as_secs_f64());
            last = line;
        }
        if st.is_done() {
            summary(&client, &batch_id, &st).await?;
            return Ok(Outcome::Done);
        }
        if st.batch_status == "pending" && !args.dispatch && !warned_pending {
            println!("  (batch not dispatched yet: pass --dispatch, or dispatch it another way)");
            warned_pending = true;
        }
        if Instant::now() >= deadline {
            eprintln!(
                "error: timed out after {:.0}s with {} calls pending",
                args.timeout, st.pending_calls
            );
            summary(&client, &batch_id, &st).await?;
            return Ok(Outcome::TimedOut);
        }
        tokio::time::sleep(poll).await;
    }
}

fn read_batch(path: &PathBuf) -> anyhow::Result<Map<String, Value>> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read batch file {}", path.display()))?;
    let value: Value = serde_json::from_str(&text)
        .with_context(|| format!("batch file {} is not JSON", path.display()))?;
    match value {
        Value::Object(m) if m.contains_key("batch_id") && m["data"].is_array() => Ok(m),
        _ => bail!(
            "the batch file must be an object with `batch_id` and a `data` list: {}",
            path.display()
        ),
    }
}

#[tokio::main]
async fn main() -> ExitCode {
    let args = Args::parse();
    let body = match read_batch(&args.batch) {
        Ok(mut b) => {
            if let Some(id) = args.batch_id {
                b.insert("batch_id".into(), json!(id));
            }
            b
        }
        Err(e) => {
            eprintln!("error: {e:#}");
            return ExitCode::from(3);
        }
    };
    match run(&args, body).await {
        Ok(Outcome::Done) => ExitCode::SUCCESS,
        Ok(Outcome::TimedOut) => ExitCode::from(2),
        Err(e) => {
            eprintln!("error: {e:#}");
            if let Some(api) = e.downcast_ref::<ApiError>() {
                let body = serde_json::to_string_pretty(&api.body).unwrap_or_default();
                eprintln!("{body}");
            }
            ExitCode::from(1)
        }
    }
}
