use actix_web::HttpResponse;

use dialer_core::models::AccountSettings;

use crate::api_error::ApiResult;
use crate::auth::Client;
use crate::ops::accounts::{self, AccountUsage};

/// The account's settings, limits and quota use.
#[derive(serde::Serialize, utoipa::ToSchema)]
pub struct AccountResponse {
    #[schema(schema_with = crate::data_schema::success_status)]
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
    responses((status = 200, description = "the account of the API key", body = AccountResponse))
)]
pub async fn get_account(Client { state, account, .. }: Client) -> ApiResult<HttpResponse> {
    let usage = accounts::usage(&state.pool, &account).await?;
    Ok(HttpResponse::Ok().json(AccountResponse {
        status: "success",
        account: account.settings(),
        usage,
    }))
}
