use actix_web::{HttpRequest, HttpResponse, web};

use crate::api_error::ApiResult;
use crate::auth::ClientAccount;
use crate::json_body::require_json;
use crate::state::AppState;

pub async fn insert(
    state: web::Data<AppState>,
    ClientAccount(account): ClientAccount,
    req: HttpRequest,
    body: web::Bytes,
) -> ApiResult<HttpResponse> {
    require_json(&req)?;
    let response = crate::ingest::submit(&state, &account, body).await?;
    Ok(HttpResponse::Ok().json(response))
}
