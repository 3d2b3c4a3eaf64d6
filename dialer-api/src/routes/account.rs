use actix_web::{HttpResponse, web};
use diesel::sql_types::{BigInt, Text};
use diesel_async::RunQueryDsl;

use dialer_core::domain::CallStatus;
use dialer_core::models::AccountSettings;

use crate::api_error::{ApiResult, ErrorResponse};
use crate::auth::ClientAccount;
use crate::state::AppState;

#[derive(diesel::QueryableByName)]
struct Usage {
    #[diesel(sql_type = BigInt)]
    queued_calls: i64,
    #[diesel(sql_type = BigInt)]
    calls_today: i64,
}

/// Current use of the account's quotas.
#[derive(serde::Serialize, utoipa::ToSchema)]
pub struct AccountUsage {
    /// Calls not yet at their final outcome (counted against `max_queued_calls`).
    queued_calls: i64,
    /// Calls submitted today in the account's timezone (counted against `max_calls_per_day`).
    calls_today: i64,
}

/// The account's settings, limits and quota use.
#[derive(serde::Serialize, utoipa::ToSchema)]
pub struct AccountResponse {
    #[schema(schema_with = crate::api_schema::success_status)]
    status: &'static str,
    #[schema(value_type = crate::api_schema::AccountSettings)]
    account: AccountSettings,
    usage: AccountUsage,
}

/// The account's own settings, limits and quotas (never its secrets).
#[utoipa::path(
    get,
    path = "/api/v1/account",
    tag = "account",
    responses(
        (status = 200, description = "the account of the API key", body = AccountResponse),
        (status = 401, description = "`unauthorized`", body = ErrorResponse),
    ),
    security(("api_key" = []))
)]
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
    Ok(HttpResponse::Ok().json(AccountResponse {
        status: "success",
        account: account.settings(),
        usage: AccountUsage {
            queued_calls: usage.queued_calls,
            calls_today: usage.calls_today,
        },
    }))
}
