//! The operator console over plain HTTP, against the real application: operators made by
//! dialerctl, sign-in and its throttle, the session cookie's flags, the live stream's snapshot,
//! sign-out and revocation, and the actions' protection (session, Origin, CSRF token) and audit
//! log. The browser tests (devkit/tests/it/console/) drive the page itself.

use std::time::Duration;

use reqwest::header::{COOKIE, HOST, LOCATION, ORIGIN, SET_COOKIE};
use serde_json::{Value, json};

use crate::helpers::{Client, TestApp, dialerctl, words};

/// A urlencoded form of one field, as a browser posts it.
trait FormBody {
    fn form_body(self, name: &str, value: &str) -> Self;
}

impl FormBody for reqwest::RequestBuilder {
    fn form_body(self, name: &str, value: &str) -> Self {
        let encoded: String = value
            .bytes()
            .map(|b| match b {
                b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                    (b as char).to_string()
                }
                other => format!("%{other:02X}"),
            })
            .collect();
        self.header("Content-Type", "application/x-www-form-urlencoded")
            .body(format!("{name}={encoded}"))
    }
}

/// An HTTP client that shows redirects instead of following them.
fn http() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client")
}

struct Answer {
    status: u16,
    location: String,
    set_cookie: String,
    text: String,
}

async fn answer(req: reqwest::RequestBuilder) -> Answer {
    let res = req.send().await.expect("request");
    let header = |name| {
        res.headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_owned()
    };
    let (location, set_cookie) = (header(LOCATION), header(SET_COOKIE));
    Answer {
        status: res.status().as_u16(),
        location,
        set_cookie,
        text: res.text().await.expect("body"),
    }
}

fn create_operator(app: &TestApp, name: &str) -> String {
    let r = dialerctl(app, &[], &[], &["--json", "operator", "create", name]);
    let v = r.ok_json();
    v["token"].as_str().expect("token").to_owned()
}

async fn sign_in(app: &TestApp, token: &str) -> Answer {
    answer(
        http()
            .post(format!("{}/console/sign-in", app.base))
            .header(ORIGIN, &app.base)
            .form_body("token", token),
    )
    .await
}

/// The cookie header a browser would send back after this sign-in.
fn cookie_of(a: &Answer) -> String {
    a.set_cookie
        .split(';')
        .next()
        .filter(|c| c.starts_with("dialer_console=") && c.len() > "dialer_console=".len())
        .unwrap_or_else(|| panic!("no session cookie: {}", a.set_cookie))
        .to_owned()
}

/// Signs in with a new operator; the cookie and the page's CSRF token.
async fn signed_in(app: &TestApp, name: &str) -> (String, String) {
    let token = create_operator(app, name);
    let a = sign_in(app, &token).await;
    assert_eq!((a.status, a.location.as_str()), (303, "/console"));
    let cookie = cookie_of(&a);
    let page = answer(
        http()
            .get(format!("{}/console", app.base))
            .header(COOKIE, &cookie),
    )
    .await;
    assert_eq!(page.status, 200, "{}", page.text);
    let csrf = page
        .text
        .split("data-csrf=\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .expect("the page's CSRF token")
        .to_owned();
    (cookie, csrf)
}

async fn act(app: &TestApp, cookie: &str, csrf: Option<&str>, body: Value) -> Answer {
    let mut req = http()
        .post(format!("{}/console/actions", app.base))
        .header(ORIGIN, &app.base)
        .header(COOKIE, cookie)
        .json(&body);
    if let Some(t) = csrf {
        req = req.header("X-CSRF-Token", t);
    }
    answer(req).await
}

/// The audit log, oldest first: (operator, action, target, result).
async fn audit(app: &TestApp) -> Vec<(String, String, String, String)> {
    use diesel_async::RunQueryDsl;
    #[derive(diesel::QueryableByName)]
    struct Row {
        #[diesel(sql_type = diesel::sql_types::Text)]
        operator: String,
        #[diesel(sql_type = diesel::sql_types::Text)]
        action: String,
        #[diesel(sql_type = diesel::sql_types::Text)]
        target: String,
        #[diesel(sql_type = diesel::sql_types::Text)]
        result: String,
    }
    let mut conn = app.pool.get().await.expect("conn");
    let rows: Vec<Row> =
        diesel::sql_query("SELECT operator, action, target, result FROM audit_log ORDER BY id")
            .load(&mut conn)
            .await
            .expect("audit log");
    rows.into_iter()
        .map(|r| (r.operator, r.action, r.target, r.result))
        .collect()
}

fn entry(
    operator: &str,
    action: &str,
    target: &str,
    result: &str,
) -> (String, String, String, String) {
    (
        operator.to_owned(),
        action.to_owned(),
        target.to_owned(),
        result.to_owned(),
    )
}

#[tokio::test]
async fn operators_sign_in_see_the_live_snapshot_and_sign_out() {
    let app = TestApp::spawn().await;
    let token = create_operator(&app, "alice");
    assert!(token.starts_with("dop_"), "{token}");
    // The token is shown once: the list never prints it, and the database holds its SHA-256.
    let list = dialerctl(&app, &[], &[], &words("operator list"));
    list.assert_ok();
    assert!(list.stdout.contains("alice") && !list.stdout.contains(&token));
    assert_eq!(
        app.count(&format!(
            "SELECT count(*) AS n FROM operators \
             WHERE token_hash = sha256(convert_to('{token}', 'UTF8')) AND token_prefix <> '{token}'"
        ))
        .await,
        1
    );
    // The console without a session sends to the sign-in form.
    let a = answer(http().get(format!("{}/console", app.base))).await;
    assert_eq!((a.status, a.location.as_str()), (303, "/console/sign-in"));

    // A bad token (or an API key) is refused, with no cookie.
    let acme = app.account("ACME").await;
    for bad in ["dop_nonsense", acme.key.as_str(), ""] {
        let a = sign_in(&app, bad).await;
        assert_eq!(
            (a.status, a.location.as_str(), a.set_cookie.as_str()),
            (303, "/console/sign-in?m=failed", ""),
            "{bad}"
        );
    }
    // A sign-in posted from another site is refused.
    let a = answer(
        http()
            .post(format!("{}/console/sign-in", app.base))
            .header(ORIGIN, "https://evil.example")
            .form_body("token", &token),
    )
    .await;
    assert_eq!(a.status, 403);

    // The good token: a session cookie, HttpOnly and SameSite=Strict, without Secure on
    // loopback http, valid 12 hours by default.
    let a = sign_in(&app, &token).await;
    assert_eq!((a.status, a.location.as_str()), (303, "/console"));
    for flag in [
        "HttpOnly",
        "SameSite=Strict",
        "Path=/console",
        "Max-Age=43200",
    ] {
        assert!(a.set_cookie.contains(flag), "{}", a.set_cookie);
    }
    assert!(!a.set_cookie.contains("Secure"), "{}", a.set_cookie);
    let cookie = cookie_of(&a);
    assert_eq!(
        app.count(
            "SELECT count(*) AS n FROM operator_sessions \
             WHERE expires_at - created_at BETWEEN interval '11 hours 59 minutes' AND interval '12 hours 1 minute'"
        )
        .await,
        1
    );
    // Not loopback: the cookie is Secure.
    let a = answer(
        http()
            .post(format!("{}/console/sign-in", app.base))
            .header(HOST, "dialer.example.com")
            .header(ORIGIN, "http://dialer.example.com")
            .form_body("token", &token),
    )
    .await;
    assert_eq!(a.status, 303);
    assert!(a.set_cookie.contains("; Secure"), "{}", a.set_cookie);

    // The page, with the operator's name and security headers.
    let res = get_signed_in(&app, "/console", &cookie).await;
    let csp = header_text(&res, "content-security-policy");
    assert!(csp.contains("script-src 'self'"), "{csp}");
    let page = res.text().await.expect("page");
    assert!(page.contains("alice") && page.contains("/console/assets/console.js"));
    let js = answer(http().get(format!("{}/console/assets/console.js", app.base))).await;
    assert!(js.status == 200 && js.text.contains("EventSource"));

    // The live stream: the snapshot of a pending batch, with its waiting reason.
    let r = acme
        .post_json(
            "/api/v1/queues/insertdataincallqueue",
            &json!({"batch_id": 7, "data": [{"phone_number": "9876543210"}, {"phone_number": "9876543211"}]}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let snapshot = first_snapshot(&app, &cookie).await;
    let batch = &snapshot["batches"][0];
    assert_eq!(
        (
            &batch["account"],
            &batch["batch_id"],
            &batch["status"],
            &batch["total"],
            &batch["done"]
        ),
        (
            &json!("ACME"),
            &json!(7),
            &json!("pending"),
            &json!(2),
            &json!(0)
        ),
        "{snapshot}"
    );
    assert!(
        batch["waiting_reason"]
            .as_str()
            .is_some_and(|w| w.contains("not dispatched")),
        "{batch}"
    );
    assert_eq!(snapshot["accounts"][0]["account"], "ACME");
    assert_eq!(
        snapshot["series"]["minutes"].as_array().map(Vec::len),
        Some(60)
    );
    // No session, no stream.
    let a = answer(http().get(format!("{}/console/live", app.base))).await;
    assert_eq!(a.status, 401);

    // Sign-out needs the CSRF token; then the cookie is worth nothing.
    let sign_out = |csrf: &str| {
        http()
            .post(format!("{}/console/sign-out", app.base))
            .header(ORIGIN, &app.base)
            .header(COOKIE, &cookie)
            .form_body("csrf", csrf)
    };
    assert_eq!(answer(sign_out("forged")).await.status, 403);
    let csrf = page
        .split("data-csrf=\"")
        .nth(1)
        .and_then(|r| r.split('"').next())
        .expect("csrf");
    let a = answer(sign_out(csrf)).await;
    assert_eq!(
        (a.status, a.location.as_str()),
        (303, "/console/sign-in?m=signed_out")
    );
    assert!(a.set_cookie.contains("Max-Age=0"), "{}", a.set_cookie);
    let a = answer(
        http()
            .get(format!("{}/console", app.base))
            .header(COOKIE, &cookie),
    )
    .await;
    assert_eq!((a.status, a.location.as_str()), (303, "/console/sign-in"));
    let a = act(
        &app,
        &cookie,
        Some(csrf),
        json!({"action": "pause", "account": "ACME", "batch_id": 7}),
    )
    .await;
    assert_eq!(a.status, 401);

    // Revoking an operator ends their sessions and their token.
    let (bob_cookie, _) = signed_in(&app, "bob").await;
    dialerctl(&app, &[], &[], &words("operator revoke bob")).assert_ok();
    let a = answer(
        http()
            .get(format!("{}/console", app.base))
            .header(COOKIE, &bob_cookie),
    )
    .await;
    assert_eq!(a.status, 303);
    let again = dialerctl(&app, &[], &[], &words("operator revoke bob"));
    again.refused("no active operator `bob`");

    let log = audit(&app).await;
    for want in [
        entry("dialerctl", "create_operator", "alice", "ok"),
        entry("alice", "sign_in", "", "ok"),
        entry("alice", "sign_out", "", "ok"),
        entry("bob", "sign_in", "", "ok"),
        entry("dialerctl", "revoke_operator", "bob", "ok"),
    ] {
        assert!(log.contains(&want), "{want:?} not in {log:?}");
    }
}

/// `GET path` with the session cookie, answered 200.
async fn get_signed_in(app: &TestApp, path: &str, cookie: &str) -> reqwest::Response {
    let res = http()
        .get(format!("{}{path}", app.base))
        .header(COOKIE, cookie)
        .send()
        .await
        .expect(path);
    assert_eq!(res.status().as_u16(), 200, "{path}");
    res
}

/// A header's value as text ("" when absent).
fn header_text(res: &reqwest::Response, name: &str) -> String {
    res.headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned()
}

/// The first snapshot event of the live stream.
async fn first_snapshot(app: &TestApp, cookie: &str) -> Value {
    let mut res = get_signed_in(app, "/console/live", cookie).await;
    let kind = header_text(&res, "content-type");
    assert_eq!(kind, "text/event-stream");
    let mut text = String::new();
    let read = async {
        while let Some(chunk) = res.chunk().await.expect("chunk") {
            text.push_str(&String::from_utf8_lossy(&chunk));
            // Events end with a blank line; the first with data is the snapshot.
            let complete = text.rfind("\n\n").map_or("", |i| &text[..i]);
            if let Some(data) = complete.lines().find_map(|l| l.strip_prefix("data: ")) {
                return serde_json::from_str::<Value>(data).expect("JSON snapshot");
            }
        }
        panic!("the stream ended: {text}");
    };
    tokio::time::timeout(Duration::from_secs(10), read)
        .await
        .expect("a snapshot within 10 s")
}

#[tokio::test]
async fn console_actions_need_a_session_the_console_s_origin_and_the_csrf_token() {
    let app = TestApp::spawn().await;
    let acme: Client = app.account("ACME").await;
    let r = acme
        .post_json(
            "/api/v1/queues/insertdataincallqueue",
            &json!({"batch_id": 7, "data": [{"phone_number": "9876543210"}]}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    app.sql(
        "INSERT INTO asterisk_servers (code, host, port, username, secret, max_channels, max_cps, channel_template) \
         VALUES ('ast1', '127.0.0.1', 5038, 'u', 's', 10, 5, 'PJSIP/{number}@trunk')",
    )
    .await;
    let (cookie, csrf) = signed_in(&app, "alice").await;
    let pause = json!({"action": "pause", "account": "ACME", "batch_id": 7});
    let status =
        || app.count("SELECT count(*) AS n FROM batches WHERE batch_id = 7 AND status = 'paused'");

    // Without a session, without a token, with a forged one, from another origin: refused,
    // and nothing changed.
    let a = answer(
        http()
            .post(format!("{}/console/actions", app.base))
            .header(ORIGIN, &app.base)
            .header("X-CSRF-Token", &csrf)
            .json(&pause),
    )
    .await;
    assert_eq!(a.status, 401, "{}", a.text);
    assert_eq!(act(&app, &cookie, None, pause.clone()).await.status, 403);
    let forged = act(&app, &cookie, Some("forged"), pause.clone()).await;
    assert_eq!(forged.status, 403);
    assert!(forged.text.contains("CSRF"), "{}", forged.text);
    for origin in [Some("https://evil.example"), None] {
        let mut req = http()
            .post(format!("{}/console/actions", app.base))
            .header(COOKIE, &cookie)
            .header("X-CSRF-Token", &csrf)
            .json(&pause);
        if let Some(o) = origin {
            req = req.header(ORIGIN, o);
        }
        let a = answer(req).await;
        assert_eq!(a.status, 403, "{origin:?}: {}", a.text);
    }
    assert_eq!(status().await, 0, "a refused request paused the batch");

    // With all three: done, and said so.
    let a = act(&app, &cookie, Some(&csrf), pause.clone()).await;
    assert_eq!(a.status, 200, "{}", a.text);
    assert_eq!(
        serde_json::from_str::<Value>(&a.text).expect("JSON")["message"],
        "batch ACME/7 is paused"
    );
    assert_eq!(status().await, 1);

    // Refusals of the operation itself are answered as the API does, and recorded.
    for (body, want) in [
        (
            json!({"action": "cancel", "account": "ACME", "batch_id": 7}),
            200,
        ),
        (
            json!({"action": "resume", "account": "ACME", "batch_id": 7}),
            409,
        ),
        (json!({"action": "replay_failed", "account": "NOPE"}), 404),
        (json!({"action": "reboot"}), 400),
    ] {
        let a = act(&app, &cookie, Some(&csrf), body.clone()).await;
        assert_eq!(a.status, want, "{body}: {}", a.text);
    }

    // Dispatch: a batch of its own, then nothing left to dispatch.
    let r = acme
        .post_json(
            "/api/v1/queues/insertdataincallqueue",
            &json!({"batch_id": 8, "data": [{"phone_number": "9876543212"}]}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let dispatch = json!({"action": "dispatch", "account": "ACME", "batch_id": 8});
    let a = act(&app, &cookie, Some(&csrf), dispatch.clone()).await;
    assert_eq!(
        serde_json::from_str::<Value>(&a.text).expect("JSON")["message"],
        "1 call of ACME dispatched (batch 8)"
    );
    assert_eq!(
        app.count(
            "SELECT count(*) AS n FROM batches WHERE batch_id = 8 AND status = 'dispatching'"
        )
        .await,
        1
    );
    let a = act(&app, &cookie, Some(&csrf), dispatch).await;
    assert_eq!(
        serde_json::from_str::<Value>(&a.text).expect("JSON")["message"],
        "nothing to dispatch for ACME/8"
    );

    // Servers: disable, enable.
    for (action, enabled) in [("disable_server", 0), ("enable_server", 1)] {
        let a = act(
            &app,
            &cookie,
            Some(&csrf),
            json!({"action": action, "server": "ast1"}),
        )
        .await;
        assert_eq!(a.status, 200, "{}", a.text);
        assert_eq!(
            app.count("SELECT count(*) AS n FROM asterisk_servers WHERE enabled")
                .await,
            enabled
        );
    }

    let log = audit(&app).await;
    let console_entries: Vec<_> = log.iter().filter(|e| e.0 == "alice").cloned().collect();
    assert_eq!(
        console_entries,
        vec![
            entry("alice", "sign_in", "", "ok"),
            entry("alice", "request", "/console/actions", "refused"),
            entry("alice", "request", "/console/actions", "refused"),
            entry("alice", "request", "/console/actions", "refused"),
            entry("alice", "request", "/console/actions", "refused"),
            entry("alice", "pause", "ACME/7", "ok"),
            entry("alice", "cancel", "ACME/7", "ok"),
            entry("alice", "resume", "ACME/7", "refused"),
            entry("alice", "replay_failed", "NOPE", "refused"),
            entry("alice", "dispatch", "ACME/8", "ok"),
            entry("alice", "dispatch", "ACME/8", "ok"),
            entry("alice", "disable_server", "ast1", "ok"),
            entry("alice", "enable_server", "ast1", "ok"),
        ]
    );
}

#[tokio::test]
async fn failed_sign_ins_are_throttled_per_address() {
    let app = TestApp::spawn().await;
    let token = create_operator(&app, "alice");
    for _ in 0..10 {
        let a = sign_in(&app, "dop_guess").await;
        assert_eq!(a.location, "/console/sign-in?m=failed");
    }
    // Past the limit, even the right token waits: the address is not asked about any token.
    for t in ["dop_guess", token.as_str()] {
        let a = sign_in(&app, t).await;
        assert_eq!(
            (a.status, a.location.as_str(), a.set_cookie.as_str()),
            (303, "/console/sign-in?m=throttled", "")
        );
    }
    assert_eq!(
        app.count("SELECT count(*) AS n FROM operator_sessions")
            .await,
        0
    );
    let page = answer(http().get(format!("{}/console/sign-in?m=throttled", app.base))).await;
    assert!(
        page.text.contains("Too many failed sign-ins"),
        "{}",
        page.text
    );
}

#[tokio::test]
async fn an_expired_session_signs_in_again() {
    let app = TestApp::spawn().await;
    let (cookie, _) = signed_in(&app, "alice").await;
    app.sql("UPDATE operator_sessions SET expires_at = now() - interval '1 second'")
        .await;
    let a = answer(
        http()
            .get(format!("{}/console", app.base))
            .header(COOKIE, &cookie),
    )
    .await;
    assert_eq!((a.status, a.location.as_str()), (303, "/console/sign-in"));
    let a = answer(
        http()
            .get(format!("{}/console/live", app.base))
            .header(COOKIE, &cookie),
    )
    .await;
    assert_eq!(a.status, 401);
}
