//! Console sessions: a random secret in an `HttpOnly`, `SameSite=Strict` cookie, `Secure` unless
//! the console is served over plain http on loopback; the database keeps its SHA-256 only. A
//! session ends when it expires (`DIALER_CONSOLE_SESSION_HOURS`), when its operator signs out,
//! or when the operator is revoked.

use std::time::Duration;

use actix_web::dev::Payload;
use actix_web::{FromRequest, HttpRequest, web};
use chrono::{DateTime, Utc};
use diesel::prelude::{ExpressionMethods, OptionalExtension, QueryDsl};
use diesel_async::RunQueryDsl;
use futures_util::future::LocalBoxFuture;

use dialer_core::db::DbPool;
use dialer_core::schema::{operator_sessions, operators};

use crate::api_error::ApiError;
use crate::console::csrf;
use crate::ops::OpsResult;
use crate::ops::operators::{Operator, random_token, token_hash};
use crate::state::AppState;

pub const COOKIE: &str = "dialer_console";
/// The cookie is sent to the console's paths only, not to the client API.
const COOKIE_PATH: &str = "/console";

/// A signed-in operator's request.
#[derive(Debug, Clone)]
pub struct Session {
    pub id: i64,
    pub operator: String,
    /// The token its state-changing requests must carry.
    pub csrf: String,
    pub expires_at: DateTime<Utc>,
}

/// Opens a session for `operator`; returns the secret for the cookie.
pub async fn start(
    pool: &DbPool,
    operator: &Operator,
    ttl: Duration,
    client_address: Option<String>,
) -> OpsResult<String> {
    let secret = random_token("")?;
    let ttl = chrono::Duration::from_std(ttl).unwrap_or(chrono::Duration::hours(12));
    let mut conn = pool.get().await?;
    diesel::insert_into(operator_sessions::table)
        .values((
            operator_sessions::operator_id.eq(operator.id),
            operator_sessions::session_hash.eq(token_hash(&secret).to_vec()),
            operator_sessions::expires_at.eq(Utc::now() + ttl),
            operator_sessions::client_address.eq(client_address),
        ))
        .execute(&mut conn)
        .await?;
    diesel::update(operators::table.filter(operators::id.eq(operator.id)))
        .set(operators::last_sign_in_at.eq(diesel::dsl::now))
        .execute(&mut conn)
        .await?;
    Ok(secret)
}

/// The live session with this secret: not ended, not expired, its operator not revoked.
pub async fn find(pool: &DbPool, secret: &str) -> OpsResult<Option<Session>> {
    let mut conn = pool.get().await?;
    let row: Option<(i64, String, DateTime<Utc>)> = operator_sessions::table
        .inner_join(operators::table)
        .filter(operator_sessions::session_hash.eq(token_hash(secret).as_slice()))
        .filter(operator_sessions::ended_at.is_null())
        .filter(operator_sessions::expires_at.gt(diesel::dsl::now))
        .filter(operators::revoked_at.is_null())
        .select((
            operator_sessions::id,
            operators::name,
            operator_sessions::expires_at,
        ))
        .first(&mut conn)
        .await
        .optional()?;
    Ok(row.map(|(id, operator, expires_at)| Session {
        id,
        operator,
        csrf: csrf::token_for(secret),
        expires_at,
    }))
}

/// Whether session `id` is still live (a stream re-checks it now and then).
pub async fn still_live(pool: &DbPool, id: i64) -> OpsResult<bool> {
    let mut conn = pool.get().await?;
    let n: i64 = operator_sessions::table
        .inner_join(operators::table)
        .filter(operator_sessions::id.eq(id))
        .filter(operator_sessions::ended_at.is_null())
        .filter(operator_sessions::expires_at.gt(diesel::dsl::now))
        .filter(operators::revoked_at.is_null())
        .count()
        .get_result(&mut conn)
        .await?;
    Ok(n > 0)
}

pub async fn end(pool: &DbPool, id: i64) -> OpsResult<()> {
    let mut conn = pool.get().await?;
    diesel::update(operator_sessions::table.filter(operator_sessions::id.eq(id)))
        .set(operator_sessions::ended_at.eq(diesel::dsl::now))
        .execute(&mut conn)
        .await?;
    Ok(())
}

/// The session cookie's value in the request, if any.
pub fn cookie_secret(req: &HttpRequest) -> Option<String> {
    req.headers()
        .get_all(actix_web::http::header::COOKIE)
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == COOKIE)
        .map(|(_, value)| value.trim().to_owned())
        .filter(|v| !v.is_empty())
}

/// Whether the cookie may go without `Secure`: plain http, addressed to a loopback host.
pub fn insecure_allowed(req: &HttpRequest) -> bool {
    let info = req.connection_info();
    info.scheme() == "http" && is_loopback_host(info.host())
}

fn is_loopback_host(host: &str) -> bool {
    // "127.0.0.1:8080", "[::1]:8080", "localhost"
    let name = match host.strip_prefix('[') {
        Some(rest) => rest.split(']').next().unwrap_or(""),
        None => host.rsplit_once(':').map_or(host, |(h, _)| h),
    };
    name.eq_ignore_ascii_case("localhost")
        || name
            .parse::<std::net::IpAddr>()
            .is_ok_and(|a| a.is_loopback())
}

/// `Set-Cookie` for a new session.
pub fn set_cookie(secret: &str, ttl: Duration, secure: bool) -> String {
    format!(
        "{COOKIE}={secret}; Path={COOKIE_PATH}; Max-Age={}; HttpOnly; SameSite=Strict{}",
        ttl.as_secs(),
        if secure { "; Secure" } else { "" }
    )
}

/// `Set-Cookie` that removes the session cookie.
pub fn clear_cookie(secure: bool) -> String {
    format!(
        "{COOKIE}=; Path={COOKIE_PATH}; Max-Age=0; HttpOnly; SameSite=Strict{}",
        if secure { "; Secure" } else { "" }
    )
}

/// The request's session, `None` when it has no live one.
pub async fn current(req: &HttpRequest, state: &AppState) -> Result<Option<Session>, ApiError> {
    let Some(secret) = cookie_secret(req) else {
        return Ok(None);
    };
    Ok(find(&state.auth_pool, &secret).await?)
}

/// Extracting a [`Session`] refuses a request without a live one (`401`).
impl FromRequest for Session {
    type Error = ApiError;
    type Future = LocalBoxFuture<'static, Result<Self, Self::Error>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let req = req.clone();
        Box::pin(async move {
            let state = req
                .app_data::<web::Data<AppState>>()
                .cloned()
                .ok_or_else(|| ApiError::internal("application state missing"))?;
            current(&req, &state)
                .await?
                .ok_or_else(|| ApiError::unauthorized("sign in to the console first"))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::http::header;
    use actix_web::test::TestRequest;

    #[test]
    fn cookie_flags_and_reading() {
        let c = set_cookie("abc", Duration::from_secs(3600), true);
        for part in [
            "dialer_console=abc",
            "Path=/console",
            "Max-Age=3600",
            "HttpOnly",
            "SameSite=Strict",
            "Secure",
        ] {
            assert!(c.contains(part), "{c}");
        }
        assert!(!set_cookie("abc", Duration::from_secs(1), false).contains("Secure"));
        assert!(clear_cookie(true).contains("Max-Age=0"));
        let req = TestRequest::get()
            .insert_header((header::COOKIE, "a=1; dialer_console=xyz; b=2"))
            .to_http_request();
        assert_eq!(cookie_secret(&req).as_deref(), Some("xyz"));
        let req = TestRequest::get()
            .insert_header((header::COOKIE, "dialer_consolex=1"))
            .to_http_request();
        assert_eq!(cookie_secret(&req), None);
    }

    #[test]
    fn secure_unless_plain_http_on_loopback() {
        let on = |host: &str| {
            let req = TestRequest::get()
                .insert_header((header::HOST, host))
                .to_http_request();
            insecure_allowed(&req)
        };
        assert!(on("127.0.0.1:8080"));
        assert!(on("localhost:8080"));
        assert!(on("[::1]:8080"));
        assert!(!on("dialer.example.com"));
        assert!(!on("10.0.0.5:8080"));
        let proxied = TestRequest::get()
            .insert_header((header::HOST, "127.0.0.1:8080"))
            .insert_header(("X-Forwarded-Proto", "https"))
            .to_http_request();
        assert!(!insecure_allowed(&proxied));
    }
}
