use actix_web::HttpResponse;

use crate::api_error::{ApiResult, ErrorResponse};
use crate::api_schema::BatchSubmission;
use crate::auth::Client;
use crate::ingest::SubmitResponse;
use crate::ingest::body::SubmissionBody;

/// Add numbers to a batch.
///
/// Creates the batch on its first post (taking the optional batch settings), adds to it on
/// later ones. A number already in the batch is counted as a duplicate, not added again, so a
/// request that timed out may be retried. Per-row problems do not fail the request: they are
/// listed in `rejected`. The accepted rows are stored together, before the answer is sent.
#[utoipa::path(
    post,
    path = "/api/v1/queues/insertdataincallqueue/",
    operation_id = "insert_data_in_call_queue",
    tag = "batches",
    request_body(
        description = "JSON, or CSV: a header naming `phone_number` and either any other columns (each a text field of `custom_data`) or one `custom_data` column (a JSON object), one row per number, with `batch_id` and the settings as query parameters (`retry_on` comma separated, `calling_hours` as JSON)",
        content(
            (BatchSubmission = "application/json"),
            (String = "text/csv"),
        )
    ),
    responses(
        (status = 200, description = "rows added, duplicates counted, problems listed", body = SubmitResponse),
        (status = 400, description = "`invalid_request`: malformed JSON, or a missing or mistyped field (named in the message)", body = ErrorResponse),
        (status = 401, description = "`unauthorized`: missing or wrong X-API-KEY", body = ErrorResponse),
        (status = 403, description = "`account_suspended`", body = ErrorResponse),
        (status = 409, description = "`batch_closed`: the batch is cancelled", body = ErrorResponse),
        (status = 413, description = "`payload_too_large`: body or row count over the limit", body = ErrorResponse),
        (status = 409, description = "`batch_settings_conflict`: a setting differs from the one the batch was created with", body = ErrorResponse),
        (status = 415, description = "`unsupported_media_type`: Content-Type is neither application/json nor text/csv", body = ErrorResponse),
        (status = 429, description = "`quota_exceeded` (queued calls, calls per day) or `rate_limited` (with Retry-After)", body = ErrorResponse),
    )
)]
pub async fn insert(
    Client { state, account, .. }: Client,
    body: SubmissionBody,
) -> ApiResult<HttpResponse> {
    let response = crate::ingest::submit(&state, &account, body).await?;
    Ok(HttpResponse::Ok().json(response))
}
