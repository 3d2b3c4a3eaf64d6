use std::collections::HashMap;

use actix_web::{HttpResponse, web};
use chrono::{DateTime, NaiveDate, NaiveTime, Utc};
use serde_json::value::RawValue;

use crate::api_error::{ApiError, ApiResult, ErrorResponse};
use crate::auth::Client;
use crate::csv_download::{self, CsvChunk};
use crate::ops::call_listing;
use crate::ops::call_search::{self, CallFilter};
use crate::ops::calls::{self, CallDetail};
use crate::ops::error::OpsResult;
use crate::ops::paging;
use crate::phone_param;

success_response! {
    /// One call: its attempts, outcome and callback deliveries.
    CallResponse(CallDetail);
}

/// One call: attempts, outcome, callback deliveries.
#[utoipa::path(
    get,
    path = "/api/v1/calls/{call_id}",
    tag = "calls",
    params(("call_id" = String, Path, format = Uuid, description = "the `call_id` of callbacks and batch status")),
    responses(
        (status = 200, description = "the call", body = CallResponse),
        (status = 404, description = "`not_found`: no call of this account", body = ErrorResponse),
    )
)]
pub async fn get_call(
    Client { state, account, .. }: Client,
    path: web::Path<String>,
) -> ApiResult<HttpResponse> {
    Ok(CallResponse::ok(
        calls::find(&state.pool, account.id, &path).await?,
    ))
}

/// A page of calls found.
#[derive(serde::Serialize, utoipa::ToSchema)]
pub struct CallSearchPage {
    /// One entry per call, newest first, as batch-status shows it (with `batch_id`).
    #[schema(schema_with = crate::data_schema::call_entries)]
    calls: Vec<Box<RawValue>>,
    /// Pass as `cursor` for the next page; null on the last page.
    #[schema(required = true)]
    next_cursor: Option<String>,
}

success_response! {
    /// Calls of the account matching the search.
    CallSearchResponse(CallSearchPage);
}

const CSV_FILENAME: &str = "calls.csv";

/// `GET /api/v1/calls`
///
/// Calls of the account across its batches, newest first; each entry is what batch-status
/// shows for the call. Filters, all optional and combined:
/// - `phone_number`: the number as submitted or in E.164 (`+` written `%2B`);
/// - `status`: `call_status` values the entries show, comma separated (`queued,busy`);
/// - `from`, `to`: when the call was submitted, RFC 3339 (`2026-12-01T09:00:00Z`) or a date
///   (`2026-12-01`, UTC: `from` its start, `to` its end); `from` is included, `to` is not.
///
/// `limit` (1..=1000, default 100) and `cursor` page through them; `?format=csv` downloads
/// every match.
#[utoipa::path(
    get,
    path = "/api/v1/calls",
    tag = "calls",
    params(
        ("phone_number" = Option<String>, Query, description = "as submitted or E.164"),
        ("status" = Option<String>, Query, description = "`call_status` values, comma separated"),
        ("from" = Option<String>, Query, description = "submitted at or after (RFC 3339 or a date)"),
        ("to" = Option<String>, Query, description = "submitted before (RFC 3339, or a date: its end)"),
        ("limit" = Option<i64>, Query, minimum = 1, maximum = 1000, description = "calls per page (default 100)"),
        ("cursor" = Option<String>, Query, description = "the `next_cursor` of the previous page"),
        ("format" = Option<String>, Query, description = "`json` (default) or `csv`"),
    ),
    responses(
        (status = 200, description = "the calls found, newest first", content(
            (CallSearchResponse = "application/json"),
            (String = "text/csv"),
        )),
        (status = 400, description = "`invalid_request` naming the parameter", body = ErrorResponse),
    )
)]
pub async fn search_calls(
    Client { state, account, .. }: Client,
    query: web::Query<HashMap<String, String>>,
) -> ApiResult<HttpResponse> {
    let known = [
        "phone_number",
        "status",
        "from",
        "to",
        "limit",
        "cursor",
        "format",
    ];
    paging::refuse_unknown_params(query.keys().map(String::as_str), &known)?;
    let arg = |name: &str| query.get(name).map(String::as_str);
    let phone_e164 = arg("phone_number")
        .map(|raw| phone_param::parse(raw, &account.default_country))
        .transpose()?
        .map(|n| n.into_string());
    let filter = CallFilter {
        phone_e164,
        statuses: call_listing::parse_statuses(arg("status"))?,
        from: arg("from")
            .map(|t| parse_time("from", t, false))
            .transpose()?,
        to: arg("to").map(|t| parse_time("to", t, true)).transpose()?,
    };
    let accountcode = account.accountcode.clone();
    if csv_download::wants_csv(&query)? {
        let (pool, account_id) = (state.pool.clone(), account.id);
        return Ok(csv_download::download(
            CSV_FILENAME,
            call_listing::CSV_HEADER,
            move |cursor, limit| {
                let (pool, filter, accountcode) =
                    (pool.clone(), filter.clone(), accountcode.clone());
                async move {
                    let mut conn = pool.get().await?;
                    let found =
                        call_search::page(&mut conn, account_id, &filter, cursor, limit).await?;
                    let mut text = String::new();
                    for f in &found {
                        call_listing::csv_line(
                            &f.call.entry_json(&accountcode, f.batch_id)?,
                            &mut text,
                        );
                    }
                    Ok(CsvChunk {
                        text,
                        last_id: found.last().map(|f| f.call.id),
                        rows: found.len(),
                    })
                }
            },
        ));
    }
    let limit = paging::parse_limit(arg("limit"))?;
    let cursor = paging::parse_cursor(arg("cursor"))?;
    let mut conn = state.pool.get().await?;
    let mut found = call_search::page(&mut conn, account.id, &filter, cursor, limit + 1).await?;
    let next_cursor = paging::next_cursor(&mut found, limit, |f| f.call.id);
    let calls = found
        .iter()
        .map(|f| f.call.entry_json(&accountcode, f.batch_id))
        .collect::<OpsResult<Vec<_>>>()?;
    Ok(CallSearchResponse::ok(CallSearchPage {
        calls,
        next_cursor,
    }))
}

/// RFC 3339, or a date (UTC): its start, or with `end_of_day` its end.
fn parse_time(name: &str, text: &str, end_of_day: bool) -> ApiResult<DateTime<Utc>> {
    if let Ok(t) = DateTime::parse_from_rfc3339(text) {
        return Ok(t.with_timezone(&Utc));
    }
    let day = NaiveDate::parse_from_str(text, "%Y-%m-%d").map_err(|_| {
        ApiError::invalid_request(format!(
            "`{name}` must be RFC 3339 (2026-12-01T09:00:00Z) or a date (2026-12-01)"
        ))
    })?;
    let day = if end_of_day {
        day.succ_opt().unwrap_or(day)
    } else {
        day
    };
    Ok(day.and_time(NaiveTime::MIN).and_utc())
}
