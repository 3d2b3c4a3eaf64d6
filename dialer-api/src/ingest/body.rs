//! The body of a submission: JSON, or CSV (`text/csv`) with `batch_id` and the settings as query
//! parameters (contract). A CSV submission is turned into the JSON form first, so both go through
//! the same checks and name fields the same way.

use actix_web::dev::Payload;
use actix_web::{FromRequest, HttpRequest, web};
use futures_util::future::LocalBoxFuture;
use serde_json::Value;
use serde_json::value::RawValue;

use dialer_core::client_text::quoted;

use crate::api_error::{ApiError, ApiResult};
use crate::json_body;

use super::rows::ROW_FIELDS;

/// A submission as it arrived.
pub enum SubmissionBody {
    Json(web::Bytes),
    Csv { query: String, body: web::Bytes },
}

impl FromRequest for SubmissionBody {
    type Error = actix_web::Error;
    type Future = LocalBoxFuture<'static, Result<Self, Self::Error>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let req = req.clone();
        let bytes = web::Bytes::from_request(&req, payload);
        Box::pin(async move {
            // The size limit answers before the content type.
            let body = bytes.await?;
            let (mime, content_type) = json_body::media_type(&req);
            match mime.as_str() {
                "application/json" => Ok(SubmissionBody::Json(body)),
                "text/csv" => Ok(SubmissionBody::Csv {
                    query: req.query_string().to_owned(),
                    body,
                }),
                _ => {
                    Err(json_body::unsupported("application/json or text/csv", content_type).into())
                }
            }
        })
    }
}

impl SubmissionBody {
    /// The submission in its JSON form.
    pub fn into_json(self) -> ApiResult<Vec<u8>> {
        match self {
            SubmissionBody::Json(body) => Ok(body.to_vec()),
            SubmissionBody::Csv { query, body } => csv_to_json(&query, &body),
        }
    }
}

/// A query parameter as the JSON value the same field has in a JSON submission. A value of the
/// wrong type stays text, so the JSON checks refuse it naming the field.
fn query_value(name: &str, text: String) -> Value {
    match name {
        "batch_id" | "max_attempts" | "retry_delay_seconds" | "priority" => text
            .parse::<i64>()
            .map(Value::from)
            .unwrap_or(Value::String(text)),
        "dispatch" | "record" => match text.as_str() {
            "true" => Value::Bool(true),
            "false" => Value::Bool(false),
            _ => Value::String(text),
        },
        "retry_on" => Value::Array(
            text.split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(|s| Value::String(s.to_owned()))
                .collect(),
        ),
        "calling_hours" | "gather" => serde_json::from_str(&text).unwrap_or(Value::String(text)),
        // Unknown names too: the JSON checks refuse them by name.
        _ => Value::String(text),
    }
}

/// `batch_id` and settings from the query, rows from the CSV: a header naming `phone_number`, and
/// either every other column as a field of `custom_data` (text, as written), or one
/// `custom_data` column holding a JSON object.
pub fn csv_to_json(query: &str, body: &[u8]) -> ApiResult<Vec<u8>> {
    let pairs = web::Query::<Vec<(String, String)>>::from_query(query)
        .map_err(|_| ApiError::invalid_request("the query string is not valid"))?
        .into_inner();
    let mut top = serde_json::Map::new();
    for (name, text) in pairs {
        if name == "data" {
            return Err(ApiError::invalid_request(
                "`data` is the CSV body, not a query parameter",
            ));
        }
        if top.contains_key(&name) {
            return Err(ApiError::invalid_request(format!(
                "query parameter `{}` is given twice",
                quoted(&name)
            )));
        }
        let value = query_value(&name, text);
        top.insert(name, value);
    }
    let rows = csv_rows(body)?;
    let mut json = serde_json::to_vec(&Value::Object(top)).map_err(ApiError::internal)?;
    // `{...}` becomes `{..., "data": [rows]}`; rows keep `custom_data` byte for byte.
    json.pop();
    if json.len() > 1 {
        json.push(b',');
    }
    json.extend_from_slice(b"\"data\":[");
    json.extend_from_slice(rows.join(",").as_bytes());
    json.extend_from_slice(b"]}");
    Ok(json)
}

/// Each CSV record as the JSON text of a row.
fn csv_rows(body: &[u8]) -> ApiResult<Vec<String>> {
    let body = body.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(body);
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(true)
        .flexible(false)
        .from_reader(body);
    let columns: Vec<String> = reader
        .headers()
        .map_err(|e| ApiError::invalid_request(format!("CSV header: {e}")))?
        .iter()
        .map(|h| h.trim().to_owned())
        .collect();
    for (i, name) in columns.iter().enumerate() {
        if name.is_empty() {
            return Err(ApiError::invalid_request(format!(
                "CSV column {} has no name",
                i + 1
            )));
        }
        if columns[..i].contains(name) {
            return Err(ApiError::invalid_request(format!(
                "CSV column `{name}` appears twice"
            )));
        }
    }
    if !columns.iter().any(|c| c == "phone_number") {
        return Err(ApiError::invalid_request(
            "the CSV header must name a `phone_number` column",
        ));
    }
    // Columns other than the row's own fields are fields of `custom_data`; a `custom_data`
    // column is the whole object. Both at once would leave us guessing which wins.
    let extra: Vec<&str> = columns
        .iter()
        .map(String::as_str)
        .filter(|c| !ROW_FIELDS.contains(c))
        .collect();
    if let Some(first) = extra.first()
        && columns.iter().any(|c| c == "custom_data")
    {
        return Err(ApiError::invalid_request(format!(
            "CSV column `{}`: give `custom_data` either as one column holding a JSON object or \
             as columns of its own, not both",
            quoted(first)
        )));
    }
    let mut rows = Vec::new();
    for (i, record) in reader.records().enumerate() {
        let record =
            record.map_err(|e| ApiError::invalid_request(format!("CSV row {}: {e}", i + 1)))?;
        let mut row = String::from("{");
        let mut fields = serde_json::Map::new();
        for (name, cell) in columns.iter().zip(record.iter()) {
            if extra.contains(&name.as_str()) {
                fields.insert(name.clone(), Value::String(cell.to_owned()));
                continue;
            }
            let value = match name.as_str() {
                "custom_data" if cell.trim().is_empty() => continue,
                // Kept as written when it is JSON; otherwise a string, which the row checks
                // reject as `custom_data_not_object`.
                "custom_data" => match serde_json::from_str::<Box<RawValue>>(cell) {
                    Ok(raw) => raw.get().to_owned(),
                    Err(_) => serde_json::to_string(cell).map_err(ApiError::internal)?,
                },
                _ => serde_json::to_string(cell).map_err(ApiError::internal)?,
            };
            if row.len() > 1 {
                row.push(',');
            }
            row.push_str(&serde_json::to_string(name).map_err(ApiError::internal)?);
            row.push(':');
            row.push_str(&value);
        }
        if !extra.is_empty() {
            if row.len() > 1 {
                row.push(',');
            }
            row.push_str("\"custom_data\":");
            row.push_str(&serde_json::to_string(&fields).map_err(ApiError::internal)?);
        }
        row.push('}');
        rows.push(row);
    }
    Ok(rows)
}
