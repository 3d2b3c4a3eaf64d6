use actix_web::{HttpResponse, web};

use crate::api_error::{ApiResult, ErrorResponse};
use crate::auth::Client;
use crate::ops::calls::{self, CallDetail};

success_response! {
    /// One call: its attempts, outcome and callback deliveries.
    CallResponse(CallDetail);
}

/// One call: attempts, outcome, callback deliveries.
#[utoipa::path(
    get,
    path = "/api/v1/calls/{call_id}",
    tag = "calls",
    params(("call_id" = String, Path, format = Uuid, description = "the `call_id` of callbacks and batch status")),
    responses(
        (status = 200, description = "the call", body = CallResponse),
        (status = 404, description = "`not_found`: no call of this account", body = ErrorResponse),
    )
)]
pub async fn get_call(
    Client { state, account }: Client,
    path: web::Path<String>,
) -> ApiResult<HttpResponse> {
    Ok(CallResponse::ok(
        calls::find(&state.pool, account.id, &path).await?,
    ))
}
