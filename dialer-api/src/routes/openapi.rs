//! The OpenAPI document of the API, generated from the handlers' `#[utoipa::path]` annotations
//! and the response types' `ToSchema` derives, served at `GET /api/v1/openapi.json`, and a
//! Scalar page rendering it at `GET /api/v1/docs`. Both are public (no `X-API-KEY`).
//!
//! The routes themselves are registered by hand in `routes::configure` (one resource serves two
//! paths; the order of `/callbacks/redeliver` matters): the test `openapi_document` checks that
//! the document and the routes the application serves are the same set, and that real answers
//! have the documented shape.

use std::sync::OnceLock;

use actix_web::HttpResponse;
use actix_web::http::header;
use utoipa::openapi::security::{ApiKey, ApiKeyValue, SecurityRequirement, SecurityScheme};
use utoipa::openapi::{ContentBuilder, OpenApi as Document, Ref, RefOr, Required, ResponseBuilder};
use utoipa::{Modify, OpenApi};

use crate::api_error::{ApiError, ErrorResponse};

/// The name of the security scheme: the `X-API-KEY` header.
pub const API_KEY_SCHEME: &str = "api_key";

/// The operations under `/api/v1` that need no key: this documentation.
const PUBLIC: [&str; 2] = ["/api/v1/openapi.json", "/api/v1/docs"];

const INSERT_PATH: &str = "/api/v1/queues/insertdataincallqueue/";
/// POSTs whose body may be empty.
const OPTIONAL_BODIES: [&str; 3] = [
    "/api/v1/controls/dispatch-calls",
    "/api/v1/account/callback-secret/rotate",
    "/api/v1/account/keys",
];

#[derive(OpenApi)]
#[openapi(
    info(
        title = "dialer-api",
        description = "Batch dialer: submit numbers in batches, dispatch them, follow their progress, \
                       and see and replay the signed callbacks. Every client request carries \
                       `X-API-KEY`; every response body is JSON (errors: \
                       `{\"status\": \"error\", \"code\": ..., \"message\": ...}`), except \
                       `/metrics`, CSV exports and this documentation."
    ),
    paths(
        super::insert::insert,
        super::batch_status::batch_status,
        super::dispatch::dispatch_calls,
        super::batch_control::pause,
        super::batch_control::resume,
        super::batch_control::cancel,
        super::calls::get_call,
        super::calls::search_calls,
        super::numbers::erase_number,
        super::account::get_account,
        super::account_callback::set_endpoint,
        super::account_callback::clear_endpoint,
        super::account_callback::test_endpoint,
        super::account_callback::rotate_secret,
        super::api_keys::list_keys,
        super::api_keys::create_key,
        super::api_keys::revoke_key,
        super::dnc::list,
        super::dnc::add,
        super::dnc::remove,
        super::prompts::create_prompt,
        super::prompts::list_prompts,
        super::prompts::delete_prompt,
        super::recordings::get_recording,
        super::recordings::get_call_recording,
        super::callbacks::list_callbacks,
        super::callbacks::get_callback,
        super::callbacks::redeliver,
        super::health::healthz,
        super::health::readyz,
        crate::metrics::render,
        openapi_json,
        docs,
    ),
    components(schemas(ErrorResponse)),
    modifiers(&Contract),
    tags(
        (name = "batches", description = "submit, dispatch, control and follow batches"),
        (name = "calls", description = "one call and its history"),
        (name = "callbacks", description = "callback deliveries: see and replay"),
        (name = "account", description = "the account of the API key"),
        (name = "prompts", description = "audio prompts played after the answer"),
        (name = "do-not-call", description = "the account's own do-not-call list"),
        (name = "operations", description = "health, readiness, metrics, this document"),
    )
)]
struct ApiDoc;

/// What the annotations cannot say one operation at a time.
struct Contract;

impl Modify for Contract {
    fn modify(&self, doc: &mut Document) {
        let components = doc.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            API_KEY_SCHEME,
            SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::with_description(
                crate::auth::API_KEY_HEADER,
                "the account's API key (printed once by `dialerctl account create`)",
            ))),
        );
        for (name, schema) in crate::api_schema::components() {
            components.schemas.entry(name).or_insert(schema);
        }
        // Every operation under `/api/v1` but the documentation needs the key, and can also
        // answer these.
        let common = [
            ("401", "`unauthorized`"),
            ("403", "`account_suspended`"),
            (
                "429",
                "`rate_limited`: too many requests; `Retry-After` says when to try again",
            ),
        ];
        for (path, item) in doc.paths.paths.iter_mut() {
            if !path.starts_with("/api/v1/") || PUBLIC.contains(&path.as_str()) {
                continue;
            }
            for op in [
                &mut item.get,
                &mut item.post,
                &mut item.put,
                &mut item.delete,
            ]
            .into_iter()
            .flatten()
            {
                op.security = Some(vec![SecurityRequirement::new(
                    API_KEY_SCHEME,
                    Vec::<String>::new(),
                )]);
                for (status, description) in common {
                    op.responses
                        .responses
                        .entry(status.to_owned())
                        .or_insert_with(|| error_response(description).into());
                }
            }
            // A body that stops arriving is timed out (see `body_timeout`).
            for op in [&mut item.post, &mut item.put]
                .into_iter()
                .flatten()
                .filter(|op| op.request_body.is_some())
            {
                op.responses
                    .responses
                    .entry("408".to_owned())
                    .or_insert_with(|| {
                        error_response("`request_timeout`: the request body stopped arriving")
                            .into()
                    });
            }
        }
        // These bodies may be left out (an empty body, not JSON `null`).
        for path in OPTIONAL_BODIES {
            if let Some(RefOr::T(body)) = doc
                .paths
                .paths
                .get_mut(path)
                .and_then(|item| item.post.as_mut())
                .and_then(|op| op.request_body.as_mut())
            {
                body.required = Some(Required::False);
            }
        }
        // The submission is served with and without the trailing slash.
        if let Some(item) = doc.paths.paths.get(INSERT_PATH).cloned() {
            let mut item = item;
            if let Some(op) = item.post.as_mut() {
                op.operation_id = op.operation_id.take().map(|id| format!("{id}_no_slash"));
                op.summary = Some("Add numbers to a batch (without the trailing slash)".into());
            }
            doc.paths
                .paths
                .insert(INSERT_PATH.trim_end_matches('/').to_owned(), item);
        }
    }
}

fn error_response(description: &str) -> utoipa::openapi::Response {
    ResponseBuilder::new()
        .description(description)
        .content(
            "application/json",
            ContentBuilder::new()
                .schema(Some(Ref::from_schema_name("Error")))
                .build(),
        )
        .build()
}

/// The document, built once.
pub fn document() -> &'static Document {
    static DOC: OnceLock<Document> = OnceLock::new();
    DOC.get_or_init(ApiDoc::openapi)
}

/// The OpenAPI document of this API.
#[utoipa::path(
    get,
    path = "/api/v1/openapi.json",
    tag = "operations",
    responses((status = 200, description = "this document (OpenAPI 3.1)", content_type = "application/json", body = Object))
)]
pub async fn openapi_json() -> Result<HttpResponse, ApiError> {
    static JSON: OnceLock<Result<String, String>> = OnceLock::new();
    match JSON.get_or_init(|| serde_json::to_string(document()).map_err(|e| e.to_string())) {
        Ok(json) => Ok(HttpResponse::Ok()
            .insert_header((header::CONTENT_TYPE, "application/json"))
            .body(json.clone())),
        Err(e) => Err(ApiError::internal(e)),
    }
}

/// This document rendered for people (Scalar; the page loads Scalar's script in the browser).
#[utoipa::path(
    get,
    path = "/api/v1/docs",
    tag = "operations",
    responses((status = 200, description = "an HTML page", content_type = "text/html", body = String))
)]
pub async fn docs() -> HttpResponse {
    static HTML: OnceLock<String> = OnceLock::new();
    let html = HTML.get_or_init(|| {
        utoipa_scalar::Scalar::new(document().clone())
            .title("dialer-api")
            .to_html()
    });
    HttpResponse::Ok()
        .insert_header((header::CONTENT_TYPE, "text/html; charset=utf-8"))
        .body(html.clone())
}
