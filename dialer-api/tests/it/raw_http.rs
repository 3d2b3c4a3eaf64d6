//! Requests the HTTP stack sees before the application does, over raw TCP: malformed heads
//! (answered by actix-http itself, with an empty body: the documented exceptions to "every body
//! is JSON"), and bodies that stop arriving (the application's `408`, JSON).

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::helpers::TestApp;

const LIMIT: Duration = Duration::from_secs(10);

/// What the server sent before closing; panics if it does not close within `LIMIT`.
async fn exchange(app: &TestApp, request: &[u8]) -> String {
    let addr = app.base.trim_start_matches("http://");
    let mut stream = TcpStream::connect(addr).await.expect("connect");
    // The server may stop reading (and close) before a huge head is all written.
    let _ = stream.write_all(request).await;
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    let read = tokio::time::timeout(LIMIT, async {
        loop {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => got.extend_from_slice(&buf[..n]),
            }
        }
    })
    .await;
    assert!(
        read.is_ok(),
        "not closed within {LIMIT:?}; got {:?}",
        String::from_utf8_lossy(&got)
    );
    String::from_utf8_lossy(&got).into_owned()
}

fn status(response: &str) -> u16 {
    response
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no status line: {response:?}"))
}

fn body(response: &str) -> &str {
    response
        .split_once("\r\n\r\n")
        .map(|(_, b)| b)
        .unwrap_or("")
}

fn json(response: &str) -> serde_json::Value {
    serde_json::from_str(body(response)).unwrap_or_else(|e| panic!("not JSON ({e}): {response}"))
}

async fn app() -> TestApp {
    TestApp::spawn_with(|c| {
        // actix-http times heads with a clock it updates every 500 ms: shorter is unreliable.
        c.api_limits.head_timeout = Duration::from_secs(2);
        c.api_limits.body_idle_timeout = Duration::from_millis(300);
    })
    .await
}

#[tokio::test]
async fn malformed_heads_are_answered_by_actix_and_closed() {
    let app = app().await;
    let big = format!(
        "GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: {}\r\n\r\n",
        "a".repeat(200 * 1024)
    );
    let many: String = (0..200).map(|i| format!("X-H{i}: v\r\n")).collect();
    let many = format!("GET /healthz HTTP/1.1\r\nHost: x\r\n{many}\r\n");
    let cases: [(&str, Vec<u8>, u16); 5] = [
        ("a 200 KB header", big.into_bytes(), 431),
        ("200 headers", many.into_bytes(), 431),
        (
            "a NUL in a header",
            b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-A: a\0b\r\n\r\n".to_vec(),
            400,
        ),
        (
            "Content-Length and Transfer-Encoding",
            b"POST /api/v1/controls/dispatch-calls HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n".to_vec(),
            400,
        ),
        ("half a head", b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-A:".to_vec(), 408),
    ];
    for (what, request, want) in cases {
        let response = exchange(&app, &request).await;
        assert_eq!(status(&response), want, "{what}: {response}");
        assert_eq!(body(&response), "", "{what}: actix-http writes no body");
    }
    // The server is still there.
    let r = app.raw(app.http.get(format!("{}/healthz", app.base))).await;
    assert_eq!(r.status, 200, "{:?} {}", r.headers, r.text);
}

#[tokio::test]
async fn a_body_that_stops_arriving_is_408_json() {
    let app = app().await;
    let client = app.account("ACME").await;
    let half = format!(
        "POST /api/v1/queues/insertdataincallqueue/ HTTP/1.1\r\nHost: x\r\nX-API-KEY: {}\r\n\
         Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{{\"batch_id\": 1, \"data\": [",
        client.key
    );
    let response = exchange(&app, half.as_bytes()).await;
    assert_eq!(status(&response), 408, "{response}");
    let v = json(&response);
    assert_eq!(
        (v["status"].as_str(), v["code"].as_str()),
        (Some("error"), Some("request_timeout"))
    );
    // Nothing was stored from it, and the account is served as before.
    let r = client.get("/api/v1/queues/batch-status/1").await;
    r.assert_error(404, "not_found");
}

/// A body actix-http cannot decode reaches the application as a payload error: JSON.
#[tokio::test]
async fn a_corrupt_chunked_body_is_400_json() {
    let app = app().await;
    let client = app.account("ACME").await;
    let request = format!(
        "POST /api/v1/controls/dispatch-calls HTTP/1.1\r\nHost: x\r\nX-API-KEY: {}\r\n\
         Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n{{}}\r\n0\r\n\r\n",
        client.key
    );
    let response = exchange(&app, request.as_bytes()).await;
    assert_eq!(status(&response), 400, "{response}");
    let v = json(&response);
    assert_eq!(v["code"], "invalid_request", "{response}");
    let message = v["message"].as_str().unwrap_or_default();
    assert!(message.contains("request body"), "{message}");
}
