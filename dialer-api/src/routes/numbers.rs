//! `DELETE /numbers/{phone_number}`: the account erases everything it has about one number.

use actix_web::{HttpResponse, web};

use crate::api_error::{ApiResult, ErrorResponse};
use crate::auth::Client;
use crate::ops::erasure::{self, ErasureOutcome};
use crate::phone_param;

success_response! {
    /// What was erased.
    ErasureResponse(ErasureOutcome);
}

/// `DELETE /api/v1/numbers/{phone_number}`
///
/// Erases everything about one number in the account, as privacy law asks: every call to it
/// (across batches, `custom_data` included), their attempts, callback events and deliveries,
/// and recordings. The account's do-not-call entry for the number stays (`do_not_call_kept`).
/// Calls not dialed yet go without a callback. Erasing a number with nothing left is a success
/// with zero counts. `409 call_in_progress` while a call to it is in progress: erase it once
/// the call has ended.
#[utoipa::path(
    delete,
    path = "/api/v1/numbers/{phone_number}",
    tag = "calls",
    params(("phone_number" = String, Path, description = "the number, e.g. `%2B919876543210` or `9876543210`")),
    responses(
        (status = 200, description = "what was erased", body = ErasureResponse),
        (status = 400, description = "`invalid_request`: not a phone number", body = ErrorResponse),
        (status = 409, description = "`call_in_progress`", body = ErrorResponse),
    )
)]
pub async fn erase_number(
    Client { state, account, .. }: Client,
    path: web::Path<String>,
) -> ApiResult<HttpResponse> {
    let number = phone_param::parse(&path, &account.default_country)?;
    let outcome = erasure::erase(&state.pool, &state.recordings, account.id, &number).await?;
    Ok(ErasureResponse::ok(outcome))
}
