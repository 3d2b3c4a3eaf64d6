//! Signing in with an operator token and out again. Failed sign-ins are counted per client
//! address; past [`SIGN_IN_MAX_FAILURES`](crate::console::settings::SIGN_IN_MAX_FAILURES) in the
//! window, that address is turned away until the window ends without the token being looked
//! up. Both forms answer with a redirect (post, redirect, get), so a reload never posts again.

use std::time::Instant;

use actix_web::{HttpRequest, HttpResponse, web};
use serde::Deserialize;

use crate::api_error::ApiError;
use crate::client_address::client_address;
use crate::console::session::{self, Session};
use crate::console::{audit, csrf, html};
use crate::ops::audit_log::Outcome;
use crate::ops::operators::{self, token_hash};
use crate::state::AppState;

#[derive(Deserialize)]
pub struct SignInForm {
    token: String,
}

#[derive(Deserialize)]
pub struct CsrfForm {
    csrf: String,
}

#[derive(Deserialize)]
pub struct Notice {
    m: Option<String>,
}

/// `GET /console/sign-in`
pub async fn sign_in_page(query: web::Query<Notice>) -> HttpResponse {
    let notice = match query.m.as_deref() {
        Some("failed") => "That token was not accepted.",
        Some("throttled") => {
            "Too many failed sign-ins from this address; try again in a few minutes."
        }
        Some("signed_out") => "You are signed out.",
        _ => "",
    };
    let notice = match notice {
        "" => String::new(),
        text => format!(
            "<p id=\"notice\" class=\"notice\">{}</p>",
            html::escape(text)
        ),
    };
    let body = format!(
        "<main class=\"sign-in\"><h1>Dialer console</h1>{notice}\
         <form method=\"post\" action=\"/console/sign-in\">\
         <label for=\"token\">Operator token</label>\
         <input id=\"token\" name=\"token\" type=\"password\" autocomplete=\"off\" required autofocus>\
         <button id=\"sign-in\" type=\"submit\">Sign in</button></form>\
         <p class=\"hint\">An operator token comes from <code>dialerctl operator create NAME</code>.</p>\
         </main>"
    );
    html::page("Sign in - dialer console", &body)
}

/// `POST /console/sign-in`
pub async fn sign_in(
    req: HttpRequest,
    state: web::Data<AppState>,
    form: web::Form<SignInForm>,
) -> Result<HttpResponse, ApiError> {
    // A sign-in posted from another site would sign the victim in as the attacker.
    csrf::same_origin(&req, &state.config.public_url)?;
    let console = &state.console;
    let token = form.token.trim();
    let hash = token_hash(token);
    let address = client_address(&req, &state.config.api_limits.trusted_proxies);
    if let Some(a) = address
        && console
            .sign_in_failures
            .check(a, &hash, Instant::now())
            .is_err()
    {
        return Ok(html::redirect("/console/sign-in?m=throttled", None));
    }
    let operator = if token.starts_with(operators::TOKEN_PREFIX) {
        let mut conn = state.auth_pool.get().await?;
        operators::by_token(&mut conn, token).await?
    } else {
        None
    };
    let Some(operator) = operator else {
        if let Some(a) = address {
            console.sign_in_failures.failed(a, Instant::now());
        }
        tracing::warn!(address = ?address, "console sign-in refused: unknown token");
        return Ok(html::redirect("/console/sign-in?m=failed", None));
    };
    console.sign_in_failures.succeeded(hash, Instant::now());
    let address_text = address.map(|a| a.to_string());
    let secret = session::start(
        &state.auth_pool,
        &operator,
        console.session_ttl,
        address_text.clone(),
    )
    .await?;
    tracing::info!(operator = %operator.name, "console sign-in");
    audit::write(
        &state,
        &operator.name,
        "sign_in",
        "",
        Outcome::Ok,
        "",
        address_text,
    )
    .await;
    let cookie = session::set_cookie(
        &secret,
        console.session_ttl,
        !session::insecure_allowed(&req),
    );
    Ok(html::redirect("/console", Some(cookie)))
}

/// `POST /console/sign-out`
pub async fn sign_out(
    req: HttpRequest,
    state: web::Data<AppState>,
    session: Session,
    form: web::Form<CsrfForm>,
) -> Result<HttpResponse, ApiError> {
    csrf::check(
        &req,
        &state.config.public_url,
        &session.csrf,
        Some(&form.csrf),
    )?;
    session::end(&state.auth_pool, session.id).await?;
    let address = client_address(&req, &state.config.api_limits.trusted_proxies);
    audit::write(
        &state,
        &session.operator,
        "sign_out",
        "",
        Outcome::Ok,
        "",
        address.map(|a| a.to_string()),
    )
    .await;
    let cookie = session::clear_cookie(!session::insecure_allowed(&req));
    Ok(html::redirect(
        "/console/sign-in?m=signed_out",
        Some(cookie),
    ))
}
