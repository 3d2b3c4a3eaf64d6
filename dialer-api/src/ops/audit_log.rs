//! The audit log: who did what to what, when, and how it went. The console writes every action
//! that changes state (and sign-ins and sign-outs), dialerctl its operator commands; the console
//! shows the latest entries. Rows are only ever inserted. Details are the operations' own
//! messages, which name batches, accounts and servers, never a secret or a phone number.

use chrono::{DateTime, Utc};
use diesel::prelude::{ExpressionMethods, QueryDsl, SelectableHelper};
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use serde::Serialize;

use dialer_core::db::DbPool;
use dialer_core::event_body::rfc3339;
use dialer_core::schema::audit_log;

use crate::ops::error::OpsResult;

/// How an action went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Ok,
    /// Refused: not allowed, or the state did not permit it (a closed batch, say).
    Refused,
    /// Failed for a reason that was not the operator's (the database, say).
    Error,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Ok => "ok",
            Outcome::Refused => "refused",
            Outcome::Error => "error",
        }
    }
}

/// One entry to write.
#[derive(Debug, Clone)]
pub struct Entry<'a> {
    /// The operator's name (`dialerctl` for the command line).
    pub operator: &'a str,
    pub action: &'a str,
    /// What it acted on: `ACME/12345` (a batch), `ACME` (an account), `ast1` (a server).
    pub target: &'a str,
    pub outcome: Outcome,
    pub detail: &'a str,
    pub client_address: Option<String>,
}

#[derive(diesel::Queryable, diesel::Selectable)]
#[diesel(table_name = audit_log)]
#[diesel(check_for_backend(diesel::pg::Pg))]
struct Row {
    at: DateTime<Utc>,
    operator: String,
    action: String,
    target: String,
    result: String,
    detail: String,
}

/// An entry as the console shows it.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct EntryView {
    pub at: String,
    pub operator: String,
    pub action: String,
    pub target: String,
    pub result: String,
    pub detail: String,
}

pub async fn record(pool: &DbPool, entry: &Entry<'_>) -> OpsResult<()> {
    let mut conn = pool.get().await?;
    diesel::insert_into(audit_log::table)
        .values((
            audit_log::operator.eq(entry.operator),
            audit_log::action.eq(entry.action),
            audit_log::target.eq(entry.target),
            audit_log::result.eq(entry.outcome.as_str()),
            audit_log::detail.eq(entry.detail),
            audit_log::client_address.eq(entry.client_address.as_deref()),
        ))
        .execute(&mut conn)
        .await?;
    Ok(())
}

/// The latest `limit` entries, newest first.
pub async fn recent(conn: &mut AsyncPgConnection, limit: i64) -> OpsResult<Vec<EntryView>> {
    let rows: Vec<Row> = audit_log::table
        .order(audit_log::id.desc())
        .limit(limit)
        .select(Row::as_select())
        .load(conn)
        .await?;
    Ok(rows
        .into_iter()
        .map(|r| EntryView {
            at: rfc3339(r.at),
            operator: r.operator,
            action: r.action,
            target: r.target,
            result: r.result,
            detail: r.detail,
        })
        .collect())
}
