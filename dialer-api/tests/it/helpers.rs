//! The real application on port 0 against its own database and queue names.

use dialer_api::ops::accounts::{self, CreateAccount};
use dialer_api::startup::Application;
use dialer_core::db::{self, DbPool};
use dialer_core::test_support::TestEnv;
use serde_json::Value;

pub struct TestApp {
    pub env: TestEnv,
    pub base: String,
    pub http: reqwest::Client,
    pub pool: DbPool,
}

/// Requests of one account, with its API key.
pub struct Client {
    http: reqwest::Client,
    base: String,
    pub key: String,
    pub accountcode: String,
}

pub struct Reply {
    pub status: u16,
    pub headers: reqwest::header::HeaderMap,
    pub text: String,
}

impl Reply {
    /// The body as JSON; every answer of the API must be JSON unless asked for CSV.
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.text).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.text))
    }

    /// Asserts the answer is the contract's error with this status and code.
    #[track_caller]
    pub fn assert_error(&self, status: u16, code: &str) {
        assert_eq!((self.status, self.error_code().as_str()), (status, code));
    }

    /// Asserts the contract's error with this status and code, its message containing `words`.
    #[track_caller]
    pub fn assert_refused(&self, status: u16, code: &str, words: &str) {
        self.assert_error(status, code);
        let message = self.message();
        assert!(message.contains(words), "{message}");
    }

    /// The error body's message ("" when there is none).
    pub fn message(&self) -> String {
        self.json()["message"].as_str().unwrap_or("").to_owned()
    }

    /// Asserts the contract's error shape and returns the code.
    pub fn error_code(&self) -> String {
        let v = self.json();
        assert_eq!(v["status"], "error", "{}", self.text);
        assert!(
            v["message"].as_str().is_some_and(|m| !m.is_empty()),
            "{}",
            self.text
        );
        v["code"].as_str().unwrap_or_default().to_owned()
    }
}

impl TestApp {
    pub async fn spawn() -> TestApp {
        Self::spawn_with(|_| {}).await
    }

    pub async fn spawn_with(adjust: impl FnOnce(&mut dialer_core::Config)) -> TestApp {
        let mut env = TestEnv::new().await;
        adjust(&mut env.config);
        Self::spawn_on(env).await
    }

    /// The application on an existing test environment.
    pub async fn spawn_on(env: TestEnv) -> TestApp {
        let app = Application::build(env.config.clone())
            .await
            .expect("application builds");
        let base = format!("http://127.0.0.1:{}", app.port());
        tokio::spawn(app.run_until_stopped());
        let pool = db::build_pool(&env.config, "test").expect("pool");
        TestApp {
            env,
            base,
            http: reqwest::Client::new(),
            pool,
        }
    }

    /// A new application and its account `code`: how most tests start.
    pub async fn with_account(code: &str) -> (TestApp, Client) {
        let app = TestApp::spawn().await;
        let client = app.account(code).await;
        (app, client)
    }

    /// Requests of account `accountcode` with this key (one made outside `account`).
    pub fn client(&self, key: String, accountcode: &str) -> Client {
        Client {
            http: self.http.clone(),
            base: self.base.clone(),
            key,
            accountcode: accountcode.into(),
        }
    }

    /// A new account (country IN unless said otherwise) and its API key.
    pub async fn account(&self, code: &str) -> Client {
        let created = accounts::create(
            &self.pool,
            CreateAccount {
                accountcode: code.into(),
                name: format!("{code} Ltd"),
                default_country: "IN".into(),
                timezone: "Asia/Kolkata".into(),
                callback_url: None,
                caller_id: None,
            },
            false,
        )
        .await
        .expect("create account");
        // Tests fire requests faster than the default per-key rate; rate_limit tests lower it.
        self.sql(&format!(
            "UPDATE accounts SET api_requests_per_second = 10000 WHERE accountcode = '{code}'"
        ))
        .await;
        self.client(created.api_key, code)
    }

    /// Gives account `code` a callback URL if it has none: its events are then written
    /// pending (an account without one has them stored `skipped`).
    pub async fn with_callback_url(&self, code: &str) {
        self.sql(&format!(
            "UPDATE accounts SET callback_url = coalesce(callback_url, 'https://93.184.216.34/cb') \
             WHERE accountcode = '{code}'"
        ))
        .await;
    }

    pub async fn sql(&self, sql: &str) {
        use diesel_async::SimpleAsyncConnection;
        let mut conn = self.pool.get().await.expect("conn");
        conn.batch_execute(sql)
            .await
            .unwrap_or_else(|e| panic!("{sql}: {e}"));
    }

    /// The number a query returns as `n` (a `bigint`).
    pub async fn count(&self, sql: &str) -> i64 {
        use diesel_async::RunQueryDsl;
        #[derive(diesel::QueryableByName)]
        struct N {
            #[diesel(sql_type = diesel::sql_types::BigInt)]
            n: i64,
        }
        let mut conn = self.pool.get().await.expect("conn");
        diesel::sql_query(sql)
            .get_result::<N>(&mut conn)
            .await
            .unwrap_or_else(|e| panic!("{sql}: {e}"))
            .n
    }

    pub async fn raw(&self, req: reqwest::RequestBuilder) -> Reply {
        send(req).await
    }
}

async fn send(req: reqwest::RequestBuilder) -> Reply {
    let res = req.send().await.expect("request sent");
    let status = res.status().as_u16();
    let headers = res.headers().clone();
    let text = res.text().await.expect("body");
    Reply {
        status,
        headers,
        text,
    }
}

impl Client {
    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    pub async fn get(&self, path: &str) -> Reply {
        send(self.http.get(self.url(path)).header("X-API-KEY", &self.key)).await
    }

    pub async fn post_json(&self, path: &str, body: &Value) -> Reply {
        send(
            self.http
                .post(self.url(path))
                .header("X-API-KEY", &self.key)
                .json(body),
        )
        .await
    }

    pub async fn post_raw(&self, path: &str, content_type: Option<&str>, body: &str) -> Reply {
        let mut req = self
            .http
            .post(self.url(path))
            .header("X-API-KEY", &self.key)
            .body(body.to_owned());
        if let Some(ct) = content_type {
            req = req.header("Content-Type", ct);
        }
        send(req).await
    }

    pub async fn put_json(&self, path: &str, body: &Value) -> Reply {
        send(
            self.http
                .put(self.url(path))
                .header("X-API-KEY", &self.key)
                .json(body),
        )
        .await
    }

    pub async fn delete(&self, path: &str) -> Reply {
        send(
            self.http
                .delete(self.url(path))
                .header("X-API-KEY", &self.key),
        )
        .await
    }

    /// Posts `body` as it is, labelled `application/json` (for malformed JSON).
    pub async fn post_json_text(&self, path: &str, body: &str) -> Reply {
        self.post_raw(path, Some("application/json"), body).await
    }

    /// `GET /api/v1/queues/batch-status/{batch_id}?{query}`, as JSON.
    pub async fn batch_status(&self, batch_id: i64, query: &str) -> Value {
        let path = format!("/api/v1/queues/batch-status/{batch_id}?{query}");
        self.get(&path).await.json()
    }

    /// Submits these rows to batch `batch_id`, with no batch settings.
    pub async fn insert_rows(&self, batch_id: i64, data: Vec<Value>) -> Reply {
        self.insert(&serde_json::json!({"batch_id": batch_id, "data": data}))
            .await
    }

    /// `POST /api/v1/batches/{batch_id}/{action}`: pause, resume or cancel.
    pub async fn control(&self, batch_id: i64, action: &str) -> Reply {
        let path = format!("/api/v1/batches/{batch_id}/{action}");
        self.post_json(&path, &serde_json::json!({})).await
    }

    pub async fn insert(&self, body: &Value) -> Reply {
        self.post_json("/api/v1/queues/insertdataincallqueue/", body)
            .await
    }

    pub async fn dispatch(&self, body: Option<&Value>) -> Reply {
        match body {
            Some(b) => self.post_json("/api/v1/controls/dispatch-calls", b).await,
            None => {
                self.post_json_text("/api/v1/controls/dispatch-calls", "")
                    .await
            }
        }
    }
}

/// Ids of every account of the test database (dial queues are per account).
pub async fn account_ids(app: &TestApp) -> Vec<i64> {
    use diesel_async::RunQueryDsl;
    #[derive(diesel::QueryableByName)]
    struct Id {
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        id: i64,
    }
    let mut conn = app.pool.get().await.expect("conn");
    diesel::sql_query("SELECT id FROM accounts ORDER BY id")
        .load::<Id>(&mut conn)
        .await
        .expect("account ids")
        .into_iter()
        .map(|r| r.id)
        .collect()
}

/// A connection to the test's broker and a channel on it, the topology declared.
async fn broker(
    app: &TestApp,
    name: &str,
) -> (
    lapin::Connection,
    lapin::Channel,
    dialer_core::topology::Topology,
) {
    let conn = dialer_core::topology::connect(&app.env.config.amqp_url, name)
        .await
        .expect("amqp");
    let channel = conn.create_channel().await.expect("channel");
    let topology = app.env.topology();
    topology.declare(&channel).await.expect("declare");
    (conn, channel, topology)
}

/// Every message now on the test's dial queues (acked), as parsed jobs.
pub async fn drain_dial_queue(app: &TestApp) -> Vec<dialer_core::dial_outbox::DialJob> {
    use lapin::options::{BasicAckOptions, BasicGetOptions};
    let (conn, channel, topology) = broker(app, "test-drain").await;
    let mut jobs = Vec::new();
    for account in account_ids(app).await {
        let queue = topology
            .declare_account_queue(&channel, account)
            .await
            .expect("account queue");
        while let Some(msg) = channel
            .basic_get(queue.as_str().into(), BasicGetOptions::default())
            .await
            .expect("get")
        {
            jobs.push(serde_json::from_slice(&msg.delivery.data).expect("dial job JSON"));
            msg.delivery
                .ack(BasicAckOptions::default())
                .await
                .expect("ack");
        }
    }
    let _ = conn.close(200, "done".into()).await;
    jobs
}

/// Messages ready on the test's dial queues, polled until `n` or the timeout.
pub async fn wait_dial_queue_len(app: &TestApp, n: u32, timeout: std::time::Duration) -> u32 {
    let (conn, channel, topology) = broker(app, "test-count").await;
    let accounts = account_ids(app).await;
    for account in &accounts {
        // idempotent; makes the passive declares below safe (a missing queue closes the channel)
        topology
            .declare_account_queue(&channel, *account)
            .await
            .expect("account queue");
    }
    let deadline = std::time::Instant::now() + timeout;
    let mut count = 0;
    while std::time::Instant::now() < deadline {
        count = 0;
        for account in &accounts {
            let queue = topology.account_dial_queue(*account);
            let q = channel
                .queue_declare(
                    queue.as_str().into(),
                    lapin::options::QueueDeclareOptions {
                        passive: true,
                        ..Default::default()
                    },
                    Default::default(),
                )
                .await;
            count += q.expect("passive declare").message_count();
        }
        if count >= n {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    let _ = conn.close(200, "done".into()).await;
    count
}

/// What a dialerctl process did.
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    pub fn json(&self) -> Value {
        serde_json::from_str(self.stdout.trim())
            .unwrap_or_else(|e| panic!("not JSON ({e}): {} / {}", self.stdout, self.stderr))
    }

    /// Asserts a zero exit (showing stderr otherwise).
    #[track_caller]
    pub fn assert_ok(&self) {
        assert_eq!(self.code, 0, "{}", self.stderr);
    }

    /// A zero exit, and its JSON output.
    #[track_caller]
    pub fn ok_json(&self) -> Value {
        self.assert_ok();
        self.json()
    }

    /// A failure: non-zero exit and one line on stderr containing `want`.
    pub fn refused(&self, want: &str) {
        assert_ne!(self.code, 0, "{}", self.stdout);
        assert_eq!(self.stderr.trim().lines().count(), 1, "{}", self.stderr);
        assert!(self.stderr.contains(want), "want `{want}`: {}", self.stderr);
    }
}

/// Runs dialerctl against the app's database and broker, with `set` added to and `unset`
/// taken from the environment.
pub fn dialerctl(app: &TestApp, set: &[(&str, &str)], unset: &[&str], args: &[&str]) -> Run {
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_dialerctl"));
    cmd.args(args)
        .env("DATABASE_URL", &app.env.config.database_url)
        .env("AMQP_URL", &app.env.config.amqp_url)
        .env("DIALER_QUEUE_PREFIX", &app.env.config.queue_prefix)
        .env_remove("RUST_LOG");
    for k in unset {
        cmd.env_remove(k);
    }
    for (k, v) in set {
        cmd.env(k, v);
    }
    let out = cmd.output().expect("run dialerctl");
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// A command line's words, so a dialerctl call reads like the shell line it stands for.
pub fn words(line: &str) -> Vec<&str> {
    line.split_whitespace().collect()
}

/// Asserts these fields of `v` together (a failure shows them all).
#[track_caller]
pub fn assert_fields(v: &Value, want: &[(&str, Value)]) {
    let got: Vec<(&str, Value)> = want.iter().map(|(k, _)| (*k, v[*k].clone())).collect();
    assert_eq!(got, want, "{v}");
}

/// SQL recording two delivery tries of event `event_id`: a 503 answered with `head`, then a
/// timeout.
pub fn two_tries_sql(event_id: &str, head: &str) -> String {
    format!(
        "INSERT INTO callback_deliveries (event_pk, attempt, attempted_at, url, status_code, error, latency_ms, response_head) \
         SELECT id, 1, '2026-01-01T10:00:00Z', 'https://hooks.example.com/cb', 503, NULL, 12, '{head}' \
         FROM call_events WHERE event_id = '{event_id}'; \
         INSERT INTO callback_deliveries (event_pk, attempt, attempted_at, url, status_code, error, latency_ms) \
         SELECT id, 2, '2026-01-01T10:00:05Z', 'https://hooks.example.com/cb', NULL, 'timed out', 10000 \
         FROM call_events WHERE event_id = '{event_id}';"
    )
}

/// SQL that gives the calls matching `calls_where` the state `status` and, as their latest
/// event, one of type `event_type` showing `call_status`: what the dispatcher leaves after an
/// attempt, for tests of what the API shows.
pub fn outcome_sql(calls_where: &str, status: &str, event_type: &str, call_status: &str) -> String {
    let final_status = status
        .parse::<dialer_core::domain::CallStatus>()
        .expect("a call status")
        .is_final();
    let finished_at = if final_status { "now()" } else { "NULL" };
    format!(
        "INSERT INTO call_events (event_id, account_id, batch_pk, call_pk, sequence, event_type, body)
         SELECT 'evt_' || c.id, c.account_id, c.batch_pk, c.id, c.event_seq + 1, '{event_type}',
                json_build_object('event_id', 'evt_' || c.id, 'event_type', '{event_type}',
                                  'call_id', c.call_id, 'phone_number', c.phone_raw,
                                  'call_status', '{call_status}', 'attempt', c.attempts + 1,
                                  'will_retry', '{status}' = 'retry_wait')::text
         FROM calls c WHERE {calls_where};
         UPDATE calls c SET status = '{status}', attempts = attempts + 1, event_seq = event_seq + 1,
                finished_at = {finished_at}
         WHERE {calls_where};"
    )
}

/// One request as the receiver saw it.
#[derive(Clone)]
pub struct Seen {
    pub body: Vec<u8>,
    /// The status the receiver answered with.
    pub answered: u16,
    pub x_signature: String,
    pub webhook_id: String,
    pub webhook_timestamp: String,
    pub webhook_signature: String,
}

/// A loopback receiver answering `status` and keeping every request.
pub async fn receiver(
    status: std::sync::Arc<std::sync::atomic::AtomicU16>,
    seen: std::sync::Arc<std::sync::Mutex<Vec<Seen>>>,
) -> u16 {
    use actix_web::{App, HttpRequest, HttpResponse, HttpServer, http::StatusCode, web};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind receiver");
    let port = listener.local_addr().expect("receiver address").port();
    let server = HttpServer::new(move || {
        let status = status.clone();
        let seen = seen.clone();
        App::new().default_service(web::to(move |req: HttpRequest, body: web::Bytes| {
            let status = status.clone();
            let seen = seen.clone();
            async move {
                let header = |name: &str| {
                    req.headers()
                        .get(name)
                        .and_then(|v| v.to_str().ok())
                        .unwrap_or_default()
                        .to_owned()
                };
                let code = StatusCode::from_u16(status.load(std::sync::atomic::Ordering::SeqCst))
                    .unwrap_or(StatusCode::OK);
                seen.lock().expect("lock").push(Seen {
                    body: body.to_vec(),
                    answered: code.as_u16(),
                    x_signature: header("x-signature"),
                    webhook_id: header("webhook-id"),
                    webhook_timestamp: header("webhook-timestamp"),
                    webhook_signature: header("webhook-signature"),
                });
                HttpResponse::build(code).body("receiver says hello")
            }
        }))
    })
    .workers(1)
    .listen(listener)
    .expect("listen")
    .run();
    tokio::spawn(server);
    port
}
