use actix_web::{HttpResponse, web};
use diesel_async::SimpleAsyncConnection;
use serde_json::json;

use crate::api_error::{ApiError, ApiResult};
use crate::state::AppState;

/// The process is up.
pub async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(json!({"status": "success", "service": "dialer-api"}))
}

/// The database and the broker are reachable.
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
    Ok(HttpResponse::Ok().json(json!({"status": "success", "database": "ok", "broker": "ok"})))
}
