use actix_web::{HttpResponse, web};
use serde::Serialize;

use crate::api_error::{ApiResult, ErrorResponse};
use crate::auth::Client;
use crate::ops::calls::{self, CallDetail};

/// One call: its attempts, outcome and callback deliveries.
#[derive(Serialize, utoipa::ToSchema)]
pub struct CallResponse {
    #[schema(schema_with = crate::data_schema::success_status)]
    status: &'static str,
    #[serde(flatten)]
    call: CallDetail,
}

/// One call: attempts, outcome, callback deliveries.
#[utoipa::path(
    get,
    path = "/api/v1/calls/{call_id}",
    tag = "calls",
    params(("call_id" = String, Path, format = Uuid, description = "the `call_id` of callbacks and batch status")),
    responses(
        (status = 200, description = "the call", body = CallResponse),
        (status = 401, description = "`unauthorized`", body = ErrorResponse),
        (status = 404, description = "`not_found`: no call of this account", body = ErrorResponse),
    ),
    security(("api_key" = []))
)]
pub async fn get_call(
    Client { state, account }: Client,
    path: web::Path<String>,
) -> ApiResult<HttpResponse> {
    let call = calls::find(&state.pool, account.id, &path).await?;
    Ok(HttpResponse::Ok().json(CallResponse {
        status: "success",
        call,
    }))
}
