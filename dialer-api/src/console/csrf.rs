//! Cross-site request protection of the console's state-changing requests, three layers deep:
//! the session cookie is `SameSite=Strict` (a browser does not send it from another site), the
//! request's `Origin` must be the console's own, and it must carry the session's CSRF token
//! (a form field or the `X-CSRF-Token` header) compared in constant time.
//!
//! The token is derived from the session's secret (SHA-256 under its own label), so it needs no
//! storage, differs per session, and reveals nothing of the cookie: a page that shows it gives
//! no one the session.

use actix_web::HttpRequest;
use actix_web::http::header;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

use crate::api_error::ApiError;
use crate::ops::operators::token_hash;

pub const HEADER: &str = "X-CSRF-Token";

/// The CSRF token of the session whose secret this is.
pub fn token_for(session_secret: &str) -> String {
    URL_SAFE_NO_PAD.encode(token_hash(&format!("console-csrf\0{session_secret}")))
}

/// Equal, in time that does not depend on where they differ.
pub fn same(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// The request's `Origin` is the console's own: the origin the request was addressed to
/// (scheme and `Host`, as a reverse proxy forwards them), or `public_url`'s. A request without
/// `Origin` is refused: every browser sends it on a POST.
pub fn same_origin(req: &HttpRequest, public_url: &str) -> Result<(), ApiError> {
    let refused =
        |why: &str| ApiError::forbidden("forbidden", format!("cross-site request: {why}"));
    let origin = req
        .headers()
        .get(header::ORIGIN)
        .and_then(|v| v.to_str().ok())
        .ok_or_else(|| refused("no Origin header"))?
        .to_ascii_lowercase();
    let info = req.connection_info();
    let own = format!("{}://{}", info.scheme(), info.host()).to_ascii_lowercase();
    let public = public_url.trim_end_matches('/').to_ascii_lowercase();
    if origin == own || origin == public {
        Ok(())
    } else {
        Err(refused("Origin is not this console"))
    }
}

/// Both checks: the origin, and the token presented (field or header) against the session's.
pub fn check(
    req: &HttpRequest,
    public_url: &str,
    expected: &str,
    presented: Option<&str>,
) -> Result<(), ApiError> {
    same_origin(req, public_url)?;
    let presented = presented.or_else(|| req.headers().get(HEADER).and_then(|v| v.to_str().ok()));
    match presented {
        Some(token) if same(token, expected) => Ok(()),
        Some(_) => Err(ApiError::forbidden("forbidden", "bad CSRF token")),
        None => Err(ApiError::forbidden("forbidden", "missing CSRF token")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::test::TestRequest;

    #[test]
    fn tokens_differ_per_session_and_compare_exactly() {
        let (a, b) = (token_for("s1"), token_for("s2"));
        assert_ne!(a, b);
        assert_eq!(a, token_for("s1"));
        assert!(!a.contains("s1"));
        assert!(same(&a, &a.clone()));
        assert!(!same(&a, &b));
        assert!(!same(&a, &a[1..]));
    }

    #[test]
    fn origin_must_be_the_console_s_own() {
        let req = |origin: Option<&str>| {
            let mut r = TestRequest::post().insert_header((header::HOST, "127.0.0.1:8080"));
            if let Some(o) = origin {
                r = r.insert_header((header::ORIGIN, o));
            }
            r.to_http_request()
        };
        let public = "https://dialer.example.com/";
        assert!(same_origin(&req(Some("http://127.0.0.1:8080")), public).is_ok());
        assert!(same_origin(&req(Some("https://dialer.example.com")), public).is_ok());
        assert!(same_origin(&req(Some("https://evil.example")), public).is_err());
        assert!(same_origin(&req(Some("null")), public).is_err());
        assert!(same_origin(&req(None), public).is_err());
        let ok = check(
            &req(Some("http://127.0.0.1:8080")),
            public,
            "tok",
            Some("tok"),
        );
        assert!(ok.is_ok());
        let bad = check(
            &req(Some("http://127.0.0.1:8080")),
            public,
            "tok",
            Some("tak"),
        );
        assert_eq!(bad.err().map(|e| e.status.as_u16()), Some(403));
    }
}
