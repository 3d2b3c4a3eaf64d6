use actix_web::{HttpRequest, HttpResponse, web};
use serde_json::json;

use crate::api_error::ApiResult;
use crate::auth::ClientAccount;
use crate::json_body::{self, require_json};
use crate::state::AppState;

/// The body is optional: empty (whatever the Content-Type) means every dispatchable batch.
pub async fn dispatch_calls(
    state: web::Data<AppState>,
    ClientAccount(account): ClientAccount,
    req: HttpRequest,
    body: web::Bytes,
) -> ApiResult<HttpResponse> {
    let batch_id = if body.iter().all(u8::is_ascii_whitespace) {
        None
    } else {
        require_json(&req)?;
        let top = json_body::parse_object(&body)?;
        json_body::batch_id_field(&top)?
    };
    let outcome = crate::dispatch::dispatch(
        &state.pool,
        &state.broker,
        account.id,
        batch_id,
        crate::dispatch::API_HANDOFF,
    )
    .await?;
    tracing::info!(dispatched = outcome.dispatched, "dispatch");
    Ok(HttpResponse::Ok().json(json!({
        "status": "success",
        "dispatched": outcome.dispatched,
        "batches": outcome.batches,
    })))
}
