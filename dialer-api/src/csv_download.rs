//! A listing downloaded as CSV (`?format=csv`): streamed a chunk of rows per database round
//! trip, keyset by id, so memory stays flat whatever the listing's size.

use std::collections::HashMap;
use std::future::Future;

use actix_web::HttpResponse;
use actix_web::http::header;
use bytes::Bytes;

use crate::api_error::{ApiError, ApiResult};
use crate::ops::error::{OpsError, OpsResult};

/// Rows per round trip.
pub const CHUNK: i64 = 5000;

/// One round trip's rows, already as CSV lines.
pub struct CsvChunk {
    pub text: String,
    /// The id of its last row (the next chunk continues from it).
    pub last_id: Option<i64>,
    pub rows: usize,
}

/// `?format=`: `json` (the default) or `csv`.
pub fn wants_csv(query: &HashMap<String, String>) -> ApiResult<bool> {
    match query.get("format").map(String::as_str) {
        None | Some("json") => Ok(false),
        Some("csv") => Ok(true),
        Some(other) => Err(ApiError::invalid_request(format!(
            "`format` must be json or csv, not `{}`",
            dialer_core::client_text::quoted(other)
        ))),
    }
}

/// Streams `header` and then every chunk `fetch(cursor, CHUNK)` gives, until one comes back
/// short, as an attachment named `filename`. The cursor is `None` for the first chunk, then the
/// last id of the previous one (the listing says in which direction it goes on).
pub fn download<F, Fut>(filename: &str, header: &'static str, fetch: F) -> HttpResponse
where
    F: Fn(Option<i64>, i64) -> Fut + 'static,
    Fut: Future<Output = OpsResult<CsvChunk>> + 'static,
{
    struct State<F> {
        fetch: F,
        cursor: Option<i64>,
        header_sent: bool,
        done: bool,
    }
    let init = State {
        fetch,
        cursor: None,
        header_sent: false,
        done: false,
    };
    let stream = futures_util::stream::unfold(init, move |mut st| async move {
        if st.done {
            return None;
        }
        let mut out = String::new();
        if !st.header_sent {
            out.push_str(header);
            st.header_sent = true;
        }
        match (st.fetch)(st.cursor, CHUNK).await {
            Ok(chunk) => {
                st.done = (chunk.rows as i64) < CHUNK;
                st.cursor = chunk.last_id.or(st.cursor);
                out.push_str(&chunk.text);
                Some((Ok::<Bytes, OpsError>(Bytes::from(out)), st))
            }
            // Headers are gone by now: ending the stream early is the only signal left.
            Err(e) => {
                st.done = true;
                Some((Err(e), st))
            }
        }
    });
    HttpResponse::Ok()
        .insert_header((header::CONTENT_TYPE, "text/csv; charset=utf-8"))
        .insert_header((
            header::CONTENT_DISPOSITION,
            format!("attachment; filename=\"{filename}\""),
        ))
        .streaming(stream)
}

/// One cell. A cell a spreadsheet would take for a formula (starting with `=`, `+`, `-`, `@`, a
/// tab or a carriage return) is escaped as OWASP recommends for CSV injection: a leading `'`,
/// and the cell quoted. A plain signed number (an E.164 number such as `+919876543210`) is no
/// formula and stays as it is.
pub fn cell(out: &mut String, value: &str) {
    let formula = value.starts_with(['=', '+', '-', '@', '\t', '\r']) && !is_plain_number(value);
    if formula || value.contains([',', '"', '\n', '\r']) {
        out.push('"');
        if formula {
            out.push('\'');
        }
        out.push_str(&value.replace('"', "\"\""));
        out.push('"');
    } else {
        out.push_str(value);
    }
}

/// `[+-]digits[.digits]`, nothing else.
fn is_plain_number(value: &str) -> bool {
    let unsigned = value.strip_prefix(['+', '-']).unwrap_or(value);
    let mut parts = unsigned.splitn(2, '.');
    let digits =
        |p: Option<&str>| p.is_some_and(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()));
    let whole = parts.next();
    digits(whole) && parts.next().is_none_or(|f| digits(Some(f)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_numbers_are_no_formula() {
        for (text, number) in [
            ("+15550100", true),
            ("-5", true),
            ("1.5", true),
            ("+1.", false),
            ("+", false),
            ("-1e3", false),
        ] {
            assert_eq!(is_plain_number(text), number, "{text}");
        }
        let mut out = String::new();
        cell(&mut out, "=1+2");
        cell(&mut out, "+919876543210");
        assert_eq!(out, "\"'=1+2\"+919876543210");
    }
}
