use actix_web::{HttpRequest, HttpResponse, web};
use serde::Serialize;

use crate::api_error::{ApiResult, ErrorResponse};
use crate::api_schema::DispatchRequest;
use crate::auth::Client;
use crate::json_body;
use crate::ops::dry_run::DryRun;
use crate::ops::{dispatch, handoff};

/// What a dispatch started.
#[derive(Serialize, utoipa::ToSchema)]
pub struct DispatchResponse {
    #[schema(schema_with = crate::data_schema::success_status)]
    status: &'static str,
    /// Calls handed to the dialer by this request (0 when nothing was waiting).
    dispatched: i64,
    /// Client batch ids that had calls dispatched.
    batches: Vec<i64>,
}

/// What a dry run found: nothing was changed.
#[derive(Serialize, utoipa::ToSchema)]
pub struct DryRunResponse {
    #[schema(schema_with = crate::data_schema::success_status)]
    status: &'static str,
    /// Always `true`: nothing was dispatched.
    dry_run: bool,
    #[serde(flatten)]
    run: DryRun,
}

/// The dispatch's answer, or its dry run's.
#[derive(Serialize, utoipa::ToSchema)]
#[serde(untagged)]
pub enum DispatchAnswer {
    Dispatched(DispatchResponse),
    DryRun(DryRunResponse),
}

/// Start dialing queued calls, or ask what would dial.
///
/// The body is optional: empty (whatever the Content-Type) means every batch of the account with
/// queued calls, paused ones excepted; `{"batch_id": 12345}` only that batch. Calling it twice
/// never dials a number twice. With `"dry_run": true` nothing changes: the answer says how many
/// calls would be originated in the next second and, for every undialed call that would not,
/// why, counted per reason (the same reasoning as `waiting_reason`); a paused batch is reported
/// under `paused` rather than refused.
#[utoipa::path(
    post,
    path = "/api/v1/controls/dispatch-calls",
    tag = "batches",
    request_body(content = DispatchRequest, content_type = "application/json"),
    responses(
        (status = 200, description = "calls dispatched (`DispatchResponse`), or the dry run (`DryRunResponse`)", body = DispatchAnswer),
        (status = 400, description = "`invalid_request`: malformed JSON or a bad `batch_id`", body = ErrorResponse),
        (status = 404, description = "`not_found`: no such batch of this account", body = ErrorResponse),
        (status = 409, description = "`batch_closed` (cancelled) or `batch_paused`", body = ErrorResponse),
        (status = 415, description = "`unsupported_media_type`: a non-empty body that is not application/json", body = ErrorResponse),
    )
)]
pub async fn dispatch_calls(
    Client { state, account, .. }: Client,
    req: HttpRequest,
    body: web::Bytes,
) -> ApiResult<HttpResponse> {
    let (batch_id, dry) = match json_body::optional_object(&req, &body, &["batch_id", "dry_run"])? {
        None => (None, false),
        Some(top) => (
            json_body::batch_id_field(&top)?,
            top.get::<bool>("dry_run", "true or false")?
                .unwrap_or(false),
        ),
    };
    if dry {
        let run = dispatch::dry_run(&state.pool, Some(account.id), batch_id).await?;
        return Ok(
            HttpResponse::Ok().json(DispatchAnswer::DryRun(DryRunResponse {
                status: "success",
                dry_run: true,
                run,
            })),
        );
    }
    let outcome = dispatch::dispatch(
        &state.pool,
        &state.broker,
        account.id,
        batch_id,
        handoff::API_HANDOFF,
    )
    .await?;
    tracing::info!(dispatched = outcome.dispatched, "dispatch");
    Ok(
        HttpResponse::Ok().json(DispatchAnswer::Dispatched(DispatchResponse {
            status: "success",
            dispatched: outcome.dispatched,
            batches: outcome.batches,
        })),
    )
}
