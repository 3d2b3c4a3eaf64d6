use actix_web::{HttpResponse, web};

use crate::api_error::{ApiResult, ErrorResponse};
use crate::auth::Client;
use crate::json_body::parse_batch_id;
use crate::ops::batch_control::{self, Control};
use crate::ops::batches::BatchSummary;

success_response! {
    /// The batch after a control: its status and counts.
    SummaryResponse(BatchSummary);
}

/// The three controls differ only in what they do to the batch.
async fn run(client: Client, path: web::Path<String>, control: Control) -> ApiResult<HttpResponse> {
    let batch_id = parse_batch_id(&path)?;
    let summary = batch_control::control(
        &client.state.pool,
        &client.state.broker,
        &client.account,
        batch_id,
        control,
    )
    .await?;
    Ok(SummaryResponse::ok(summary))
}

/// A control's route, documented as its own operation: its name, doc, path, what 200 means and
/// the responses only it has.
macro_rules! control_route {
    ($(#[doc = $doc:tt])* $name:ident, $control:ident, $path:tt, $done:tt, [$($only:tt)*]) => {
        $(#[doc = $doc])*
        #[utoipa::path(
            post,
            path = $path,
            tag = "batches",
            params(("batch_id" = i64, Path, minimum = 1, description = "the client's batch id")),
            responses(
                (status = 200, description = $done, body = SummaryResponse),
                (status = 400, description = "`invalid_request`: `batch_id` is not a positive integer", body = ErrorResponse),
                (status = 404, description = "`not_found`: no such batch of this account", body = ErrorResponse),
                $($only)*
            )
        )]
        pub async fn $name(
            client: Client,
            path: web::Path<String>,
        ) -> ApiResult<HttpResponse> {
            run(client, path, Control::$control).await
        }
    };
}

control_route!(
    /// Pause a batch: no new call of the batch starts (calls claimed and waiting for their
    /// pacing slot are taken back: no Originate leaves after this answer); calls in progress
    /// finish. Idempotent.
    pause,
    Pause,
    "/api/v1/batches/{batch_id}/pause",
    "the batch, now paused",
    [(status = 409, description = "`batch_closed`: the batch is cancelled or completed", body = ErrorResponse),]
);

control_route!(
    /// Resume a paused batch: dialing continues where it stopped, without another dispatch.
    resume,
    Resume,
    "/api/v1/batches/{batch_id}/resume",
    "the batch, dialing again",
    [(status = 409, description = "`batch_closed`: the batch is cancelled", body = ErrorResponse),]
);

control_route!(
    /// Cancel a batch: no new call starts (no Originate leaves after this answer); calls in
    /// progress finish; every call not yet dialed ends with a `call_cancelled` event, whose
    /// `attempt` is the one that will not happen: the first 10,000 before this answer, the rest
    /// of a larger batch within seconds after it (`pending_calls` counts them down).
    /// Idempotent.
    cancel,
    Cancel,
    "/api/v1/batches/{batch_id}/cancel",
    "the batch, now cancelled",
    []
);
