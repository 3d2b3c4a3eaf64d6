//! The contract's client calls a run makes over HTTP, as a client system would.

use std::time::Duration;

use serde_json::Value;

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("{method} {path}: {source}")]
    Http {
        method: &'static str,
        path: String,
        source: reqwest::Error,
    },
    #[error("{method} {path}: HTTP {status}: {body}")]
    Status {
        method: &'static str,
        path: String,
        status: u16,
        body: String,
    },
}

#[derive(Clone)]
pub struct ApiClient {
    base: String,
    key: String,
    http: reqwest::Client,
}

impl ApiClient {
    pub fn new(base: &str, api_key: &str) -> ApiClient {
        ApiClient {
            base: base.trim_end_matches('/').to_owned(),
            key: api_key.to_owned(),
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(60))
                .build()
                .unwrap_or_default(),
        }
    }

    async fn call(
        &self,
        method: &'static str,
        path: &str,
        body: Option<&Value>,
    ) -> Result<Value, ClientError> {
        let url = format!("{}{path}", self.base);
        let req = match method {
            "POST" => self.http.post(&url),
            _ => self.http.get(&url),
        }
        .header("X-API-KEY", &self.key);
        let req = match body {
            Some(b) => req.json(b),
            None => req,
        };
        let err = |source| ClientError::Http {
            method,
            path: path.to_owned(),
            source,
        };
        let resp = req.send().await.map_err(err)?;
        let status = resp.status();
        let text = resp.text().await.map_err(err)?;
        if !status.is_success() {
            return Err(ClientError::Status {
                method,
                path: path.to_owned(),
                status: status.as_u16(),
                body: text,
            });
        }
        Ok(serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    /// `POST /api/v1/queues/insertdataincallqueue/`
    pub async fn submit(&self, batch: &Value) -> Result<Value, ClientError> {
        self.call("POST", "/api/v1/queues/insertdataincallqueue/", Some(batch))
            .await
    }

    /// `POST /api/v1/prompts` with text the platform speaks.
    pub async fn spoken_prompt(&self, text: &str) -> Result<Value, ClientError> {
        self.call(
            "POST",
            "/api/v1/prompts",
            Some(&serde_json::json!({ "text": text, "language": "en" })),
        )
        .await
    }

    /// `POST /api/v1/controls/dispatch-calls` for one batch.
    pub async fn dispatch(&self, batch_id: i64) -> Result<Value, ClientError> {
        self.call(
            "POST",
            "/api/v1/controls/dispatch-calls",
            Some(&serde_json::json!({ "batch_id": batch_id })),
        )
        .await
    }

    /// `POST /api/v1/batches/{id}/cancel`: every call not yet dialed ends `call_cancelled`.
    pub async fn cancel(&self, batch_id: i64) -> Result<Value, ClientError> {
        self.call("POST", &format!("/api/v1/batches/{batch_id}/cancel"), None)
            .await
    }

    /// `GET /api/v1/queues/batch-status/{id}` with one call listed (the totals are what a run
    /// watches).
    pub async fn batch_status(&self, batch_id: i64) -> Result<Value, ClientError> {
        self.call(
            "GET",
            &format!("/api/v1/queues/batch-status/{batch_id}?limit=1"),
            None,
        )
        .await
    }
}
