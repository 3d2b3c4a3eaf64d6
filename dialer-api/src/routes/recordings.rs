//! `GET /recordings/{call_id}/{attempt}`: an attempt's recording, to its own account;
//! `GET /recordings/{call_id}`: the latest attempt's that is stored.

use actix_web::{HttpResponse, web};

use crate::api_error::{ApiError, ApiResult, ErrorResponse};
use crate::auth::Client;
use crate::ops::recordings;

/// An attempt's recording (`audio/wav`).
///
/// The URL is the `recording_url` of the attempt's events. `404` until the file is stored
/// (`call_recording_ready` says when), once it has passed the account's retention, and for
/// another account's call.
#[utoipa::path(
    get,
    path = "/api/v1/recordings/{call_id}/{attempt}",
    tag = "calls",
    params(
        ("call_id" = String, Path, description = "the call's `call_id`"),
        ("attempt" = i32, Path, description = "the attempt, from 1"),
    ),
    responses(
        (status = 200, description = "the recording", content_type = "audio/wav", body = String),
        (status = 404, description = "`not_found`: not stored (yet), past retention, or not this account's", body = ErrorResponse),
    )
)]
pub async fn get_recording(
    Client { state, account, .. }: Client,
    path: web::Path<(String, String)>,
) -> ApiResult<HttpResponse> {
    let (call_id, attempt) = path.into_inner();
    let Ok(attempt) = attempt.parse::<i32>() else {
        return Err(ApiError::not_found(
            "no recording for this call and attempt",
        ));
    };
    serve(&state, account.id, &call_id, Some(attempt)).await
}

/// A call's recording (`audio/wav`): its latest attempt's that is stored.
///
/// For a call dialed once, the same as `/api/v1/recordings/{call_id}/1`; after retries, the
/// latest attempt whose recording is stored. `404` as for an attempt's.
#[utoipa::path(
    get,
    path = "/api/v1/recordings/{call_id}",
    tag = "calls",
    params(("call_id" = String, Path, description = "the call's `call_id`")),
    responses(
        (status = 200, description = "the recording", content_type = "audio/wav", body = String),
        (status = 404, description = "`not_found`: none stored (yet), past retention, or not this account's", body = ErrorResponse),
    )
)]
pub async fn get_call_recording(
    Client { state, account, .. }: Client,
    path: web::Path<String>,
) -> ApiResult<HttpResponse> {
    serve(&state, account.id, &path.into_inner(), None).await
}

async fn serve(
    state: &crate::state::AppState,
    account_id: i64,
    call_id: &str,
    attempt: Option<i32>,
) -> ApiResult<HttpResponse> {
    let not_found = || ApiError::not_found("no recording for this call and attempt");
    let Ok(call_id) = uuid::Uuid::parse_str(call_id) else {
        return Err(not_found());
    };
    let mut conn = state.pool.get().await?;
    let wav = recordings::fetch(&mut conn, &state.recordings, account_id, call_id, attempt)
        .await?
        .ok_or_else(not_found)?;
    Ok(HttpResponse::Ok()
        .content_type("audio/wav")
        .insert_header(("Cache-Control", "private, max-age=3600"))
        .body(wav))
}
