//! What the Asterisk servers fetch and send, outside `/api/v1` and without an API key: each
//! URL is a capability the dispatcher signed (see `dialer_core::media_url`).
//! `GET /media/v1/prompts/{prompt_id}/{tag}.wav`: a prompt to play, through Asterisk's
//! `res_http_media_cache`, which keeps it for as long as `Cache-Control` says (a prompt never
//! changes: a new upload is a new prompt).
//! `PUT /media/v1/recordings/{call_id}/{attempt}/{expires}/{tag}`: an attempt's recording.

use actix_web::http::header;
use actix_web::{HttpResponse, web};

use crate::api_error::{ApiError, ApiResult};
use crate::ops::prompts;
use crate::state::AppState;

pub async fn prompt_audio(
    state: web::Data<AppState>,
    path: web::Path<(String, String)>,
) -> ApiResult<HttpResponse> {
    let (prompt_id, file) = path.into_inner();
    let not_found = || ApiError::not_found("no such prompt");
    let tag = file.strip_suffix(".wav").ok_or_else(not_found)?;
    if !dialer_core::call_flow::is_prompt_id(&prompt_id)
        || !state.media.verify_prompt(&prompt_id, tag)
    {
        return Err(not_found());
    }
    let mut conn = state.pool.get().await?;
    let audio = prompts::audio(&mut conn, &prompt_id)
        .await?
        .ok_or_else(not_found)?;
    Ok(HttpResponse::Ok()
        .content_type("audio/wav")
        .insert_header((header::CACHE_CONTROL, "public, max-age=86400, immutable"))
        .insert_header((header::ETAG, format!("\"{prompt_id}\"")))
        .body(audio))
}

/// The largest recording taken: over two hours of the 8 kHz 16-bit mono WAV MixMonitor writes.
pub const MAX_RECORDING_BYTES: usize = 128 * 1024 * 1024;

/// `PUT /media/v1/recordings/{call_id}/{attempt}/{expires}/{tag}`: the PBX's upload of an
/// attempt's recording (the shipped dialplan's `curl`), once, before the URL expires.
pub async fn upload_recording(
    state: web::Data<AppState>,
    path: web::Path<(String, String, String, String)>,
    body: web::Bytes,
) -> ApiResult<HttpResponse> {
    let (call_id, attempt, expires, tag) = path.into_inner();
    let not_found = || ApiError::not_found("no recording upload at this URL");
    let (Ok(call_id), Ok(attempt), Ok(expires)) = (
        uuid::Uuid::parse_str(&call_id),
        attempt.parse::<i32>(),
        expires.parse::<i64>(),
    ) else {
        return Err(not_found());
    };
    if !state
        .media
        .verify_recording(call_id, attempt, expires, &tag)
    {
        return Err(not_found());
    }
    if chrono::Utc::now().timestamp() > expires {
        return Err(ApiError::new(
            actix_web::http::StatusCode::GONE,
            "upload_expired",
            "this upload URL has expired",
        ));
    }
    let duration_ms = crate::prompt_audio::duration_ms(&body)
        .map_err(|e| ApiError::invalid_request(e.to_string()))?;
    let mut conn = state.pool.get().await?;
    let stored = crate::ops::recordings::store(
        &mut conn,
        &state.recordings,
        call_id,
        attempt,
        body,
        (duration_ms / 1000) as i32,
    )
    .await?;
    drop(conn);
    if let Some(ready) = stored.ready
        && ready.queued
    {
        crate::ops::handoff::prompt_events(&state.broker, ready.batch_pk).await;
    }
    tracing::info!(%call_id, attempt, duration_ms, "recording stored");
    Ok(HttpResponse::Ok().json(serde_json::json!({"status": "success", "stored": true})))
}
