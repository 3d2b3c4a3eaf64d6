//! The account's own do-not-call list (`GET /dnc`, `POST /dnc`, `DELETE /dnc/{phone_number}`).
//! The global list stays the operators' and is never shown; an opt-out made by a callee's
//! keypress is listed but only an operator may remove it.

use std::collections::HashMap;

use actix_web::{HttpResponse, web};

use dialer_core::domain::DncSource;

use crate::api_error::{ApiError, ApiResult, ErrorResponse};
use crate::auth::Client;
use crate::csv_download::{self, CsvChunk};
use crate::json_body::{self, JsonBody};
use crate::ops::dnc::{self, DncEntry, MAX_NUMBERS, MAX_REASON_CHARS};
use crate::ops::paging;
use crate::phone_param;

const CSV_HEADER: &str = "phone_number,source,reason,created_at\n";

/// A page of the account's do-not-call entries.
#[derive(serde::Serialize, utoipa::ToSchema)]
pub struct DncPage {
    entries: Vec<DncEntry>,
    /// Pass as `cursor` for the next page; null on the last page.
    #[schema(required = true)]
    next_cursor: Option<String>,
}

/// A number refused by `POST /dnc`.
#[derive(serde::Serialize, utoipa::ToSchema)]
pub struct RejectedNumber {
    index: usize,
    phone_number: String,
    /// `invalid_phone_number`.
    reason: &'static str,
}

/// What `POST /dnc` did.
#[derive(serde::Serialize, utoipa::ToSchema)]
pub struct DncAdded {
    added: usize,
    /// Numbers that were on the list already (their entry is kept as it was).
    already_listed: usize,
    rejected: Vec<RejectedNumber>,
}

/// What `DELETE /dnc/{phone_number}` did.
#[derive(serde::Serialize, utoipa::ToSchema)]
pub struct DncRemoved {
    /// E.164.
    phone_number: String,
    removed: bool,
}

success_response! {
    /// A page of the account's do-not-call entries.
    DncListResponse(DncPage);
    /// What an addition did.
    DncAddResponse(DncAdded);
    /// A removed entry.
    DncRemoveResponse(DncRemoved);
}

/// `GET /api/v1/dnc`
///
/// The account's do-not-call entries in the order they were added (`limit` 1..=1000, default
/// 100; `cursor`: the previous page's `next_cursor`). `?format=csv` downloads them all.
#[utoipa::path(
    get,
    path = "/api/v1/dnc",
    tag = "do-not-call",
    params(
        ("limit" = Option<i64>, Query, minimum = 1, maximum = 1000, description = "entries per page (default 100)"),
        ("cursor" = Option<String>, Query, description = "the `next_cursor` of the previous page"),
        ("format" = Option<String>, Query, description = "`json` (default) or `csv`"),
    ),
    responses(
        (status = 200, description = "the account's entries", content(
            (DncListResponse = "application/json"),
            (String = "text/csv"),
        )),
        (status = 400, description = "`invalid_request` naming `limit`, `cursor` or `format`", body = ErrorResponse),
    )
)]
pub async fn list(
    Client { state, account, .. }: Client,
    query: web::Query<HashMap<String, String>>,
) -> ApiResult<HttpResponse> {
    if csv_download::wants_csv(&query)? {
        let pool = state.pool.clone();
        let account_id = account.id;
        let filename = format!("dnc-{}.csv", account.accountcode);
        return Ok(csv_download::download(
            &filename,
            CSV_HEADER,
            move |cursor, limit| {
                let pool = pool.clone();
                async move {
                    let mut conn = pool.get().await?;
                    let rows = dnc::page(&mut conn, account_id, cursor.unwrap_or(0), limit).await?;
                    let mut text = String::new();
                    for e in &rows {
                        for (i, value) in [
                            e.phone_number.as_str(),
                            e.source.as_str(),
                            e.reason.as_str(),
                            &e.created_at
                                .to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
                        ]
                        .iter()
                        .enumerate()
                        {
                            if i > 0 {
                                text.push(',');
                            }
                            csv_download::cell(&mut text, value);
                        }
                        text.push('\n');
                    }
                    Ok(CsvChunk {
                        text,
                        last_id: rows.last().map(|e| e.id),
                        rows: rows.len(),
                    })
                }
            },
        ));
    }
    let limit = paging::parse_limit(query.get("limit").map(String::as_str))?;
    let after = paging::parse_cursor(query.get("cursor").map(String::as_str))?.unwrap_or(0);
    let mut conn = state.pool.get().await?;
    let mut entries = dnc::page(&mut conn, account.id, after, limit + 1).await?;
    let next_cursor = paging::next_cursor(&mut entries, limit, |e| e.id);
    Ok(DncListResponse::ok(DncPage {
        entries,
        next_cursor,
    }))
}

/// `POST /api/v1/dnc`
///
/// Adds numbers to the account's list: `{"phone_numbers": ["9876543210", ...], "reason":
/// "asked by phone"}` (1 to 10,000 numbers, read like submitted ones with the account's
/// country; `reason` optional, at most 200 characters). Calls of the account not yet dialed
/// to these numbers end `call_skipped` (`do_not_call`) when their turn comes, and later
/// submissions reject them. Numbers that are not phone numbers are listed in `rejected`; the
/// others are added.
#[utoipa::path(
    post,
    path = "/api/v1/dnc",
    tag = "do-not-call",
    request_body(content = crate::api_schema::DncAddRequest, content_type = "application/json"),
    responses(
        (status = 200, description = "what was added", body = DncAddResponse),
        (status = 400, description = "`invalid_request` naming `phone_numbers` or `reason`", body = ErrorResponse),
        (status = 415, description = "`unsupported_media_type`", body = ErrorResponse),
    )
)]
pub async fn add(
    Client { state, account, .. }: Client,
    JsonBody(body): JsonBody,
) -> ApiResult<HttpResponse> {
    let top = json_body::parse_object(&body)?;
    top.only(&["phone_numbers", "reason"])?;
    let numbers: Vec<serde_json::Value> =
        top.require("phone_numbers", "an array of phone number strings")?;
    if numbers.is_empty() || numbers.len() > MAX_NUMBERS {
        return Err(ApiError::invalid_request(format!(
            "`phone_numbers` must hold 1 to {MAX_NUMBERS} numbers, not {}",
            numbers.len()
        )));
    }
    let numbers = numbers
        .into_iter()
        .enumerate()
        .map(|(i, v)| match v {
            serde_json::Value::String(s) => Ok(s),
            // As at submission: a JSON number is taken as its digits.
            serde_json::Value::Number(n) if n.is_u64() => Ok(n.to_string()),
            _ => Err(ApiError::invalid_request(format!(
                "`phone_numbers[{i}]` must be a string"
            ))),
        })
        .collect::<ApiResult<Vec<String>>>()?;
    let reason: String = top.get("reason", "a string")?.unwrap_or_default();
    if reason.chars().count() > MAX_REASON_CHARS {
        return Err(ApiError::invalid_request(format!(
            "`reason` is longer than {MAX_REASON_CHARS} characters"
        )));
    }
    let outcome = dnc::add_many(
        &state.pool,
        Some(account.id),
        &account.default_country,
        &numbers,
        &reason,
        DncSource::Client,
    )
    .await?;
    tracing::info!(
        added = outcome.added,
        "do-not-call entries added by the account"
    );
    Ok(DncAddResponse::ok(DncAdded {
        added: outcome.added,
        already_listed: outcome.already_listed,
        rejected: outcome
            .invalid
            .into_iter()
            .map(|(index, phone_number)| RejectedNumber {
                index,
                phone_number,
                reason: "invalid_phone_number",
            })
            .collect(),
    }))
}

/// `DELETE /api/v1/dnc/{phone_number}`
///
/// Removes a number from the account's list (the number as submitted or in E.164, `+` written
/// `%2B`). `404 not_found` when it is not on the list; `409 dnc_entry_protected` when the
/// callee opted out by keypress (only an operator may remove that).
#[utoipa::path(
    delete,
    path = "/api/v1/dnc/{phone_number}",
    tag = "do-not-call",
    params(("phone_number" = String, Path, description = "the number, e.g. `%2B919876543210` or `9876543210`")),
    responses(
        (status = 200, description = "removed", body = DncRemoveResponse),
        (status = 400, description = "`invalid_request`: not a phone number", body = ErrorResponse),
        (status = 404, description = "`not_found`: not on the account's list", body = ErrorResponse),
        (status = 409, description = "`dnc_entry_protected`: an opt-out by keypress", body = ErrorResponse),
    )
)]
pub async fn remove(
    Client { state, account, .. }: Client,
    path: web::Path<String>,
) -> ApiResult<HttpResponse> {
    let number = phone_param::parse(&path, &account.default_country)?;
    dnc::remove_own(&state.pool, account.id, &number).await?;
    tracing::info!(phone = %number.masked(), "do-not-call entry removed by the account");
    Ok(DncRemoveResponse::ok(DncRemoved {
        phone_number: number.into_string(),
        removed: true,
    }))
}
