//! A request id for every request: on every log line inside it (a tracing span), and in the
//! `X-Request-Id` response header so a client can quote it. One line per request with status
//! and latency; API keys and bodies are never logged, nor the signature of a media URL (a
//! capability: whoever holds it can fetch the prompt or upload the recording).

use std::time::Instant;

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{HeaderName, HeaderValue};
use actix_web::middleware::Next;
use tracing::Instrument;

pub async fn request_log(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let request_id = uuid::Uuid::new_v4().simple().to_string();
    let span = tracing::info_span!("request", request_id = %request_id, method = %req.method(), path = %loggable_path(req.path()));
    let started = Instant::now();
    let mut res = next.call(req).instrument(span.clone()).await?;
    let status = res.status().as_u16();
    span.in_scope(|| {
        tracing::info!(
            status,
            latency_ms = started.elapsed().as_millis() as u64,
            "request done"
        );
    });
    if let Ok(value) = HeaderValue::from_str(&request_id) {
        res.headers_mut()
            .insert(HeaderName::from_static("x-request-id"), value);
    }
    Ok(res)
}

/// The path as logged: a media URL without its last segment (the signature).
fn loggable_path(path: &str) -> std::borrow::Cow<'_, str> {
    match (path.starts_with("/media/"), path.rsplit_once('/')) {
        (true, Some((head, _))) => format!("{head}/<signature>").into(),
        _ => path.into(),
    }
}

#[cfg(test)]
mod tests {
    use super::loggable_path;

    #[test]
    fn media_signatures_stay_out_of_the_log() {
        assert_eq!(
            loggable_path("/media/v1/prompts/prm_1/AbCdEf.wav"),
            "/media/v1/prompts/prm_1/<signature>"
        );
        assert_eq!(
            loggable_path("/media/v1/recordings/c/1/99/tag"),
            "/media/v1/recordings/c/1/99/<signature>"
        );
        assert_eq!(loggable_path("/api/v1/account"), "/api/v1/account");
    }
}
