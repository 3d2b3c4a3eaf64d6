use actix_web::{HttpResponse, web};

use crate::api_error::ApiResult;
use crate::auth::ClientAccount;
use crate::batches::{self, BatchSummary};
use crate::json_body::parse_batch_id;
use crate::state::AppState;

#[derive(serde::Serialize)]
pub struct SummaryResponse<'a> {
    pub status: &'static str,
    #[serde(flatten)]
    pub batch: &'a BatchSummary,
}

fn respond(summary: BatchSummary) -> HttpResponse {
    HttpResponse::Ok().json(SummaryResponse {
        status: "success",
        batch: &summary,
    })
}

pub async fn pause(
    state: web::Data<AppState>,
    ClientAccount(account): ClientAccount,
    path: web::Path<String>,
) -> ApiResult<HttpResponse> {
    let batch_id = parse_batch_id(&path)?;
    Ok(respond(
        batches::pause(&state.pool, account.id, batch_id).await?,
    ))
}

pub async fn resume(
    state: web::Data<AppState>,
    ClientAccount(account): ClientAccount,
    path: web::Path<String>,
) -> ApiResult<HttpResponse> {
    let batch_id = parse_batch_id(&path)?;
    Ok(respond(
        batches::resume(&state.pool, &state.broker, account.id, batch_id).await?,
    ))
}

pub async fn cancel(
    state: web::Data<AppState>,
    ClientAccount(account): ClientAccount,
    path: web::Path<String>,
) -> ApiResult<HttpResponse> {
    let batch_id = parse_batch_id(&path)?;
    Ok(respond(
        batches::cancel(&state.pool, &state.broker, &account, batch_id).await?,
    ))
}
