use actix_web::{HttpResponse, web};
use diesel_async::SimpleAsyncConnection;
use serde::Serialize;

use crate::api_error::{ApiError, ApiResult, ErrorResponse};
use crate::state::AppState;

#[derive(Serialize, utoipa::ToSchema)]
pub struct Health {
    #[schema(schema_with = crate::data_schema::success_status)]
    status: &'static str,
    /// `dialer-api`.
    service: &'static str,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct Readiness {
    #[schema(schema_with = crate::data_schema::success_status)]
    status: &'static str,
    /// `ok`.
    database: &'static str,
    /// `ok`.
    broker: &'static str,
}

/// The process is up.
#[utoipa::path(
    get,
    path = "/healthz",
    tag = "operations",
    responses((status = 200, description = "up", body = Health))
)]
pub async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(Health {
        status: "success",
        service: "dialer-api",
    })
}

/// The database and the broker are reachable.
#[utoipa::path(
    get,
    path = "/readyz",
    tag = "operations",
    responses(
        (status = 200, description = "ready", body = Readiness),
        (status = 503, description = "`not_ready`: the message names what is unreachable", body = ErrorResponse),
    )
)]
pub async fn readyz(state: web::Data<AppState>) -> ApiResult<HttpResponse> {
    let not_ready = |what: &str| {
        ApiError::new(
            actix_web::http::StatusCode::SERVICE_UNAVAILABLE,
            "not_ready",
            what,
        )
    };
    let mut conn = state
        .pool
        .get()
        .await
        .map_err(|_| not_ready("database unreachable"))?;
    conn.batch_execute("SELECT 1")
        .await
        .map_err(|_| not_ready("database unreachable"))?;
    drop(conn);
    state
        .broker
        .channel()
        .await
        .map_err(|_| not_ready("RabbitMQ unreachable"))?;
    Ok(HttpResponse::Ok().json(Readiness {
        status: "success",
        database: "ok",
        broker: "ok",
    }))
}
