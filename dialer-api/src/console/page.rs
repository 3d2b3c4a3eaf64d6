//! The console page and its two assets. The page is the frame; `assets/console.js` fills it
//! from the live stream and sends the actions, `assets/console.css` lays it out. Both are in the
//! binary: nothing is fetched from anywhere else.

use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, web};

use crate::api_error::ApiError;
use crate::console::html::{self, escape};
use crate::console::session::{self, Session};
use crate::state::AppState;

const SCRIPT: &str = include_str!("assets/console.js");
const STYLE: &str = include_str!("assets/console.css");

/// `GET /console`: the console, or the sign-in page for a request without a live session.
pub async fn console(
    req: HttpRequest,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    Ok(match session::current(&req, &state).await? {
        None => html::redirect("/console/sign-in", None),
        Some(s) => html::page("Dialer console", &body(&s)),
    })
}

fn body(s: &Session) -> String {
    let (who, csrf) = (escape(&s.operator), escape(&s.csrf));
    format!(
        r#"<header><h1>Dialer console</h1><span id="conn" class="conn">connecting</span>
<span id="updated" class="updated"></span>
<span class="who">Signed in as <b id="operator">{who}</b></span>
<form method="post" action="/console/sign-out"><input type="hidden" name="csrf" value="{csrf}"><button id="sign-out" type="submit">Sign out</button></form>
</header>
<main id="console" data-csrf="{csrf}">
<div id="result" role="status" hidden></div>
<section><h2>Batches</h2>
<table id="batches"><thead><tr><th>Account</th><th>Batch</th><th>Status</th><th>Progress</th><th>Answered</th><th>Busy</th><th>No answer</th><th>Failed</th><th>Not dialed</th><th>Human / machine</th><th>Waiting because</th><th>Actions</th></tr></thead><tbody></tbody></table>
<p id="more-batches" class="muted"></p></section>
<section><h2>Accounts</h2>
<table id="accounts"><thead><tr><th>Account</th><th>Status</th><th>Calls/s</th><th>Channels</th><th>Callback backlog</th><th>Failed callbacks</th><th>Actions</th></tr></thead><tbody></tbody></table></section>
<section><h2>Asterisk servers</h2>
<table id="servers"><thead><tr><th>Server</th><th>State</th><th>Calls/s</th><th>Channels</th><th>Capacity</th><th>Held by</th><th>Actions</th></tr></thead><tbody></tbody></table></section>
<section class="plots"><h2>Last hour</h2>
<figure><figcaption>Calls started per second</figcaption><svg id="plot-cps" viewBox="0 0 640 180" role="img"></svg></figure>
<figure><figcaption>Outcomes per minute <span class="legend"></span></figcaption><svg id="plot-outcomes" viewBox="0 0 640 180" role="img"></svg></figure>
<figure><figcaption>Callback latency, ms (median, 95th percentile)</figcaption><svg id="plot-latency" viewBox="0 0 640 180" role="img"></svg></figure>
</section>
<section><h2>Audit log</h2>
<table id="audit"><thead><tr><th>When</th><th>Operator</th><th>Action</th><th>Target</th><th>Result</th><th>Detail</th></tr></thead><tbody></tbody></table></section>
</main>
<dialog id="confirm"><form method="dialog"><p id="confirm-text"></p>
<div class="buttons"><button id="confirm-no" value="cancel">Cancel</button> <button id="confirm-yes" value="ok">Confirm</button></div></form></dialog>
<script src="/console/assets/console.js" defer></script>"#
    )
}

/// `GET /console/assets/{name}`
pub async fn asset(name: web::Path<String>) -> HttpResponse {
    let (body, kind) = match name.as_str() {
        "console.js" => (SCRIPT, "text/javascript; charset=utf-8"),
        "console.css" => (STYLE, "text/css; charset=utf-8"),
        _ => return HttpResponse::NotFound().finish(),
    };
    HttpResponse::Ok()
        .content_type(kind)
        // Small, and new with every release: checked each time rather than cached stale.
        .insert_header((header::CACHE_CONTROL, "no-cache"))
        .insert_header((header::X_CONTENT_TYPE_OPTIONS, "nosniff"))
        .body(body)
}
