//! See and replay callback deliveries (the contract's `GET /callbacks` and
//! `POST /callbacks/redeliver`). Another account's events are never listed, and their ids are
//! answered exactly like ids that never existed.

use std::collections::HashMap;

use actix_web::{HttpResponse, web};
use dialer_core::callbacks::listing::EventFilter;
use dialer_core::callbacks::replay::ReplaySelection;

use crate::api_error::{ApiError, ApiResult, ErrorResponse};
use crate::api_schema::RedeliverRequest;
use crate::auth::Client;
use crate::json_body::{self, JsonBody};
use crate::ops::callbacks::{self, EventDetail, EventPage, RedeliverOutcome};
use crate::ops::paging;

success_response! {
    /// A page of the account's callback events.
    CallbackListResponse(EventPage);
    /// One callback event with its body and every try.
    CallbackResponse(EventDetail);
    /// What a redelivery did.
    RedeliverResponse(RedeliverOutcome);
}

/// `GET /api/v1/callbacks`
///
/// The account's callback events with their delivery state, newest first.
///
/// Query parameters:
/// - `status` (optional): `pending` | `delivered` | `failed` | `skipped`.
/// - `limit` (optional, 1..=1000, default 100).
/// - `cursor` (optional): the `next_cursor` of the previous page.
///
/// `200`:
/// ```json
/// {"status": "success",
///  "events": [{"event_id": "evt_...", "event_type": "call_completed", "batch_id": 12345,
///              "call_id": "...", "sequence": 3, "delivery_status": "failed",
///              "delivery_attempts": 8, "last_error": "HTTP 503", "next_attempt_at": null,
///              "delivered_at": null, "occurred_at": "2024-01-01T10:02:07Z"}],
///  "next_cursor": "4711"}
/// ```
/// `next_attempt_at` is set for pending events only; `next_cursor` is null on the last page.
/// Errors: `400 invalid_request` (naming `status`, `limit` or `cursor`), `401`.
#[utoipa::path(
    get,
    path = "/api/v1/callbacks",
    tag = "callbacks",
    params(
        ("status" = Option<String>, Query, description = "`pending`, `delivered`, `failed` or `skipped`"),
        ("limit" = Option<i64>, Query, minimum = 1, maximum = 1000, description = "events per page (default 100)"),
        ("cursor" = Option<String>, Query, description = "the `next_cursor` of the previous page"),
    ),
    responses(
        (status = 200, description = "the account's events, newest first", body = CallbackListResponse),
        (status = 400, description = "`invalid_request` naming `status`, `limit` or `cursor`", body = ErrorResponse),
    )
)]
pub async fn list_callbacks(
    Client { state, account, .. }: Client,
    query: web::Query<HashMap<String, String>>,
) -> ApiResult<HttpResponse> {
    let status = query
        .get("status")
        .map(|s| callbacks::parse_status(s))
        .transpose()?;
    let filter = EventFilter {
        status,
        limit: Some(paging::parse_limit(query.get("limit").map(String::as_str))?),
        cursor: paging::parse_cursor(query.get("cursor").map(String::as_str))?,
    };
    Ok(CallbackListResponse::ok(
        callbacks::list(&state.pool, account.id, &filter).await?,
    ))
}

/// `GET /api/v1/callbacks/{event_id}`
///
/// One event: the fields of the listing, the exact `body` every try sends, and every try in
/// `deliveries` (oldest first): `{"attempt": 1, "attempted_at": "...", "url": "...",
/// "status_code": 503, "error": null, "latency_ms": 12, "response_head": "first bytes"}`.
/// Errors: `404 not_found` for an id that is no event of this account, `401`.
#[utoipa::path(
    get,
    path = "/api/v1/callbacks/{event_id}",
    tag = "callbacks",
    params(("event_id" = String, Path, description = "`evt_...`")),
    responses(
        (status = 200, description = "the event, its exact body and every try", body = CallbackResponse),
        (status = 404, description = "`not_found`: no event of this account", body = ErrorResponse),
    )
)]
pub async fn get_callback(
    Client { state, account, .. }: Client,
    path: web::Path<String>,
) -> ApiResult<HttpResponse> {
    Ok(CallbackResponse::ok(
        callbacks::show(&state.pool, account.id, &path).await?,
    ))
}

/// `POST /api/v1/callbacks/redeliver`
///
/// Sends events again, from the start of the retry schedule (earlier tries stay on record and
/// attempt numbers go on). The body is one of:
/// - `{"status": "failed"}`: every failed event of the account;
/// - `{"event_ids": ["evt_...", ...]}` (1 to 1000 ids): these events, whether failed, skipped or
///   already delivered (a client that lost one asks again). Pending ones are left alone and
///   listed in `already_pending`.
///
/// `200`:
/// ```json
/// {"status": "success", "redelivered": 2, "event_ids": ["evt_a", "evt_b"],
///  "already_pending": [], "not_found": ["evt_x"]}
/// ```
/// Ids that are no event of this account (another account's included) are listed in
/// `not_found` and change nothing; when no named id is an event of the account the answer is
/// `404 not_found`. Errors: `400 invalid_request` (naming `event_ids` or `status`),
/// `415 unsupported_media_type`, `401`.
#[utoipa::path(
    post,
    path = "/api/v1/callbacks/redeliver",
    tag = "callbacks",
    request_body(content = RedeliverRequest, content_type = "application/json"),
    responses(
        (status = 200, description = "the events sent again", body = RedeliverResponse),
        (status = 400, description = "`invalid_request` naming `event_ids` or `status`", body = ErrorResponse),
        (status = 404, description = "`not_found`: no named id is an event of this account", body = ErrorResponse),
        (status = 415, description = "`unsupported_media_type`", body = ErrorResponse),
    )
)]
pub async fn redeliver(
    Client { state, account, .. }: Client,
    JsonBody(body): JsonBody,
) -> ApiResult<HttpResponse> {
    let selection = parse_redeliver_body(&body)?;
    let outcome = callbacks::redeliver(&state.pool, account.id, &selection).await?;
    tracing::info!(
        redelivered = outcome.redelivered,
        not_found = outcome.not_found.len(),
        "callback redelivery"
    );
    Ok(RedeliverResponse::ok(outcome))
}

/// The body of `POST /callbacks/redeliver`: `{"event_ids": [...]}` or `{"status": "failed"}`.
pub fn parse_redeliver_body(body: &[u8]) -> ApiResult<ReplaySelection> {
    let top = json_body::parse_object(body)?;
    top.only(&["event_ids", "status"])?;
    let ids: Option<Vec<String>> = top.get("event_ids", "an array of event id strings")?;
    let status: Option<String> = top.get("status", "the string `failed`")?;
    match (ids, status) {
        (Some(_), Some(_)) => Err(ApiError::invalid_request(
            "give either `event_ids` or `status`, not both",
        )),
        (None, None) => Err(ApiError::invalid_request(
            "`event_ids` (an array of event ids) or `status` (`failed`) is required",
        )),
        (None, Some(s)) if s == "failed" => Ok(ReplaySelection::AllFailed),
        (None, Some(s)) => Err(ApiError::invalid_request(format!(
            "`status` must be `failed`, not `{s}` (name other events in `event_ids`)"
        ))),
        (Some(ids), None) => Ok(ReplaySelection::EventIds(callbacks::check_ids(ids)?)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ops::callbacks::MAX_REDELIVER_IDS;

    fn code(r: ApiResult<ReplaySelection>) -> String {
        match r {
            Ok(s) => format!("{s:?}"),
            Err(e) => format!("{} {}", e.status.as_u16(), e.message),
        }
    }

    #[test]
    fn redeliver_bodies() {
        assert_eq!(
            parse_redeliver_body(br#"{"status":"failed"}"#).ok(),
            Some(ReplaySelection::AllFailed)
        );
        assert_eq!(
            parse_redeliver_body(br#"{"event_ids":["evt_a"," evt_b","evt_a"]}"#).ok(),
            Some(ReplaySelection::EventIds(vec![
                "evt_a".into(),
                "evt_b".into()
            ]))
        );
        for (body, want) in [
            (&br#"{}"#[..], "is required"),
            (br#"{"status":"failed","event_ids":["evt_a"]}"#, "not both"),
            (br#"{"status":"delivered"}"#, "`status` must be `failed`"),
            (br#"{"event_ids":[]}"#, "`event_ids` is empty"),
            (br#"{"event_ids":[""]}"#, "`event_ids[0]`"),
            (br#"{"event_ids":[1]}"#, "`event_ids` must be"),
            (br#"{"event_ids":"evt_a"}"#, "`event_ids` must be"),
            (
                br#"{"status":"failed","since":"x"}"#,
                "unknown field `since`",
            ),
            (br#"[1]"#, "JSON object"),
            (br#"{"#, "malformed JSON"),
        ] {
            let got = code(parse_redeliver_body(body));
            assert!(
                got.starts_with("400 ") && got.contains(want),
                "{}: {got}",
                String::from_utf8_lossy(body)
            );
        }
        let many: Vec<String> = (0..=MAX_REDELIVER_IDS)
            .map(|i| format!("evt_{i}"))
            .collect();
        let body =
            serde_json::to_vec(&serde_json::json!({ "event_ids": many })).unwrap_or_default();
        assert!(code(parse_redeliver_body(&body)).contains("at most 1000"));
    }
}
