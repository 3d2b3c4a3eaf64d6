use actix_web::{HttpResponse, web};
use diesel::sql_types::{BigInt, Text};
use diesel_async::RunQueryDsl;

use dialer_core::domain::CallStatus;

use crate::api_error::ApiResult;
use crate::auth::ClientAccount;
use crate::state::AppState;

#[derive(diesel::QueryableByName)]
struct Usage {
    #[diesel(sql_type = BigInt)]
    queued_calls: i64,
    #[diesel(sql_type = BigInt)]
    calls_today: i64,
}

/// The account's settings, limits and current use of its quotas; never its secrets.
pub async fn get_account(
    state: web::Data<AppState>,
    ClientAccount(account): ClientAccount,
) -> ApiResult<HttpResponse> {
    let pending = CallStatus::sql_list(|s| !s.is_final());
    let mut conn = state.pool.get().await?;
    let usage: Usage = diesel::sql_query(format!(
        "SELECT count(*) FILTER (WHERE status IN ({pending})) AS queued_calls,
                count(*) FILTER (WHERE created_at >= (date_trunc('day', now() AT TIME ZONE $2) AT TIME ZONE $2)) AS calls_today
         FROM calls WHERE account_id = $1"
    ))
    .bind::<BigInt, _>(account.id)
    .bind::<Text, _>(&account.timezone)
    .get_result(&mut conn)
    .await?;
    Ok(HttpResponse::Ok().json(serde_json::json!({
        "status": "success",
        "account": account.settings(),
        "usage": {"queued_calls": usage.queued_calls, "calls_today": usage.calls_today},
    })))
}
