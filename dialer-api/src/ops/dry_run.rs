//! The dry run: what would dial now and, for every undialed call that would not, why, counted per
//! reason. Each call is judged by the dispatcher's own rules ([`dialer_core::dial_rules`]) on
//! facts read in one grouped statement; the calls nothing holds are then met with the capacity
//! the dispatchers report ([`crate::ops::dial_capacity`]). Nothing is written. `waiting_reason`
//! is the same evaluation of one batch, so the two never disagree.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use diesel::QueryableByName;
use diesel::sql_types::{BigInt, Bool, Jsonb, Nullable, Text, Timestamptz};
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use serde::Serialize;

use dialer_core::calling_hours::CallingHours;
use dialer_core::calling_window::zone_for;
use dialer_core::dial_rules::{self, CallFacts, HoldReason};
use dialer_core::domain::{BatchStatus, CallStatus};
use dialer_core::prepared::PrepareOnce;

use crate::ops::dial_capacity::Capacity;
use crate::ops::error::OpsResult;

/// Which calls are looked at.
#[derive(Debug, Clone, Copy, Default)]
pub struct Scope {
    pub account_id: Option<i64>,
    pub batch_pk: Option<i64>,
}

/// How queued calls are read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// As a dispatch would leave them: scheduled, their batch dialing (the dry run of dispatch).
    AsIfDispatched,
    /// As they are: a queued call waits for a dispatch (`waiting_reason`).
    AsTheyAre,
}

/// Calls held for one reason (and one wording of it: calling hours per zone and opening).
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Held {
    #[schema(value_type = String, example = "calling_hours")]
    pub reason: HoldReason,
    pub count: i64,
    /// In words an operator can act on.
    pub detail: String,
    /// When the hold lifts, where it is known (calling hours open, re-dial window ends).
    #[schema(required = true)]
    pub until: Option<String>,
}

/// One batch's part of the dry run.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct BatchDryRun {
    pub accountcode: String,
    pub batch_id: i64,
    /// Calls that would be originated within the next second.
    pub would_dial: i64,
    /// Calls nothing but capacity holds (they dial as rates and channels allow).
    pub ready: i64,
    pub held: Vec<Held>,
}

/// What would dial now, and why the rest would not.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct DryRun {
    /// Undialed calls looked at (queued, scheduled, waiting for a retry).
    pub considered: i64,
    pub would_dial: i64,
    pub ready: i64,
    /// Every reason with its count, most calls first.
    pub held: Vec<Held>,
    pub batches: Vec<BatchDryRun>,
    #[schema(value_type = String)]
    pub evaluated_at: String,
}

/// One group of calls sharing every fact the rules read.
#[derive(Debug, QueryableByName)]
struct Group {
    #[diesel(sql_type = BigInt)]
    account_id: i64,
    #[diesel(sql_type = Text)]
    accountcode: String,
    #[diesel(sql_type = BigInt)]
    batch_id: i64,
    #[diesel(sql_type = Text)]
    status: CallStatus,
    #[diesel(sql_type = Text)]
    batch_status: BatchStatus,
    #[diesel(sql_type = Bool)]
    account_active: bool,
    #[diesel(sql_type = Text)]
    timezone: String,
    #[diesel(sql_type = Nullable<Text>)]
    phone_region: Option<String>,
    #[diesel(sql_type = Nullable<Jsonb>)]
    calling_hours: Option<serde_json::Value>,
    #[diesel(sql_type = Bool)]
    expired: bool,
    #[diesel(sql_type = Bool)]
    dnc: bool,
    #[diesel(sql_type = Bool)]
    destination_allowed: bool,
    #[diesel(sql_type = Bool)]
    not_due: bool,
    #[diesel(sql_type = Nullable<Timestamptz>)]
    due_at: Option<DateTime<Utc>>,
    #[diesel(sql_type = Nullable<Timestamptz>)]
    redial_until: Option<DateTime<Utc>>,
    #[diesel(sql_type = BigInt)]
    n: i64,
    #[diesel(sql_type = Timestamptz)]
    now: DateTime<Utc>,
}

/// The facts of every undialed call in `scope`, grouped; `limit` looks at that many only, for a
/// quick answer (no order: the index on the batch and status finds them without walking the
/// batch's finished calls).
async fn groups(
    conn: &mut AsyncPgConnection,
    scope: Scope,
    limit: Option<i64>,
) -> OpsResult<Vec<Group>> {
    let undialed = CallStatus::sql_unfinished("", |s| {
        matches!(
            s,
            CallStatus::Queued | CallStatus::Scheduled | CallStatus::RetryWait
        )
    });
    // One text per kind of scope, so each prepared plan can use its index (a batch's calls by
    // batch and status, an account's by account and status); `$1 IS NULL OR ...` would leave
    // a generic plan a scan of every call.
    let (filter, key) = match (scope.batch_pk, scope.account_id) {
        (Some(batch_pk), _) => ("batch_pk = $1 AND", batch_pk),
        (None, Some(account_id)) => ("account_id = $1 AND", account_id),
        (None, None) => ("$1::bigint IS NOT NULL AND", 0),
    };
    let sql = format!(
        "WITH c AS (
           SELECT * FROM calls WHERE {filter} {undialed} LIMIT $2
         ), f AS (
           SELECT c.account_id, a.accountcode, b.batch_id, b.priority::bigint AS batch_priority,
             c.status, b.status AS batch_status, a.status = 'active' AS account_active,
             a.timezone, c.phone_region, COALESCE(b.calling_hours, a.calling_hours) AS calling_hours,
             (b.expires_at IS NOT NULL AND b.expires_at <= now()) AS expired,
             EXISTS (SELECT 1 FROM dnc_numbers d WHERE d.phone_e164 = c.phone_e164
                     AND (d.account_id IS NULL OR d.account_id = c.account_id)) AS dnc,
             (cardinality(a.allowed_countries) = 0 AND cardinality(a.allowed_prefixes) = 0)
               OR coalesce(c.phone_region = ANY (a.allowed_countries), false)
               OR EXISTS (SELECT 1 FROM unnest(a.allowed_prefixes) p
                          WHERE starts_with(c.phone_e164, p)) AS destination_allowed,
             (c.status <> 'queued' AND c.next_due_at IS NOT NULL AND c.next_due_at > now()) AS not_due,
             c.next_due_at,
             CASE WHEN a.redial_window_hours > 0 THEN
               (SELECT max(o.last_dialed_at) FROM calls o WHERE o.account_id = c.account_id
                AND o.phone_e164 = c.phone_e164 AND o.id <> c.id)
               + make_interval(hours => a.redial_window_hours) END AS redial_until
           FROM c JOIN batches b ON b.id = c.batch_pk JOIN accounts a ON a.id = c.account_id
         )
         SELECT account_id, accountcode, batch_id, batch_priority, status, batch_status,
           account_active, timezone, phone_region, calling_hours, expired, dnc,
           destination_allowed, not_due, min(next_due_at) AS due_at,
           max(redial_until) AS redial_until, count(*) AS n, now() AS now
         FROM f
         GROUP BY account_id, accountcode, batch_id, batch_priority, status, batch_status,
           account_active, timezone, phone_region, calling_hours, expired, dnc,
           destination_allowed, not_due, (redial_until > now())
         ORDER BY account_id, batch_priority DESC, batch_id"
    );
    // Fixed text: kept prepared, so a status poll does not plan it again.
    Ok(diesel::sql_query(sql)
        .bind::<BigInt, _>(key)
        .bind::<Nullable<BigInt>, _>(limit)
        .prepared()
        .load(conn)
        .await?)
}

/// What the rules say of a group: `None` when only capacity holds it.
fn judge(g: &Group, mode: Mode) -> Option<Held> {
    let now = g.now;
    let queued = g.status == CallStatus::Queued;
    let batch_status = match (mode, queued, g.batch_status) {
        (Mode::AsTheyAre, true, BatchStatus::Pending) => BatchStatus::Pending,
        (Mode::AsTheyAre, true, BatchStatus::Dispatching | BatchStatus::Completed) => {
            return Some(held(
                HoldReason::NotDispatched,
                g.n,
                "new calls not dispatched yet; call dispatch-calls".to_owned(),
                None,
            ));
        }
        // A dispatch starts pending and completed batches (a completed one that got new calls).
        (Mode::AsIfDispatched, true, BatchStatus::Pending | BatchStatus::Completed) => {
            BatchStatus::Dispatching
        }
        (_, _, status) => status,
    };
    if g.status == CallStatus::RetryWait && g.not_due {
        return Some(not_due(g));
    }
    let hours = g
        .calling_hours
        .as_ref()
        .and_then(|v| CallingHours::from_json(v).ok());
    let facts = CallFacts {
        batch_status,
        account_active: g.account_active,
        expired: g.expired,
        dnc: g.dnc,
        destination_allowed: g.destination_allowed,
        calling_hours: hours.as_ref(),
        zone: zone_for(g.phone_region.as_deref(), &g.timezone),
        redial_until: g.redial_until,
    };
    let verdict = dial_rules::judge(&facts, now);
    match verdict.reason() {
        // Nothing in the rules holds it: only a retry delay or a placement back-off may.
        None => g.not_due.then(|| not_due(g)),
        Some(reason) => Some(held(reason, g.n, verdict.text(), verdict.until(now))),
    }
}

fn not_due(g: &Group) -> Held {
    held(
        HoldReason::RetryNotDue,
        g.n,
        "waiting for its retry delay (or a placement back-off)".to_owned(),
        g.due_at,
    )
}

fn held(reason: HoldReason, count: i64, detail: String, until: Option<DateTime<Utc>>) -> Held {
    Held {
        reason,
        count,
        detail,
        until: until.map(dialer_core::event_body::rfc3339),
    }
}

/// Adds `h` to `list`, merging with the same reason and wording (the earliest `until` kept).
fn add(list: &mut Vec<Held>, h: Held) {
    match list
        .iter_mut()
        .find(|x| x.reason == h.reason && x.detail == h.detail)
    {
        Some(x) => {
            x.count += h.count;
            if h.until < x.until {
                x.until = h.until;
            }
        }
        None => list.push(h),
    }
}

/// The dry run over `scope`.
pub async fn evaluate(conn: &mut AsyncPgConnection, scope: Scope, mode: Mode) -> OpsResult<DryRun> {
    evaluate_limited(conn, scope, mode, None).await
}

/// [`evaluate`] on `limit` undialed calls when `limit` is given.
pub async fn evaluate_limited(
    conn: &mut AsyncPgConnection,
    scope: Scope,
    mode: Mode,
    limit: Option<i64>,
) -> OpsResult<DryRun> {
    let groups = groups(conn, scope, limit).await?;
    let evaluated_at = groups.as_slice().first().map_or_else(Utc::now, |g| g.now);
    // Ready calls per account, then per batch in the order the dispatcher serves them.
    let mut batches: Vec<BatchDryRun> = Vec::new();
    let mut ready_by_account: BTreeMap<i64, Vec<(usize, i64)>> = BTreeMap::new();
    let mut considered = 0;
    for g in &groups {
        considered += g.n;
        let i = match batches
            .iter()
            .position(|b| b.accountcode == g.accountcode && b.batch_id == g.batch_id)
        {
            Some(i) => i,
            None => {
                batches.push(BatchDryRun {
                    accountcode: g.accountcode.clone(),
                    batch_id: g.batch_id,
                    would_dial: 0,
                    ready: 0,
                    held: Vec::new(),
                });
                batches.len() - 1
            }
        };
        match judge(g, mode) {
            Some(h) => add(&mut batches[i].held, h),
            None => {
                batches[i].ready += g.n;
                let per_batch = ready_by_account.entry(g.account_id).or_default();
                match per_batch.iter_mut().find(|(b, _)| *b == i) {
                    Some((_, n)) => *n += g.n,
                    None => per_batch.push((i, g.n)),
                }
            }
        }
    }
    // Read only when some call waits for nothing but capacity.
    let mut capacity = match ready_by_account.is_empty() {
        true => None,
        false => Some(Capacity::load(conn).await?),
    };
    for (account_id, per_batch) in ready_by_account {
        let Some(capacity) = capacity.as_mut() else {
            break;
        };
        let ready: i64 = per_batch.iter().map(|(_, n)| n).sum();
        let grant = capacity.grant(conn, account_id, ready).await?;
        let mut left = grant.would_dial;
        for (i, n) in per_batch {
            let dial = left.min(n);
            left -= dial;
            batches[i].would_dial += dial;
            if let Some((reason, detail)) = &grant.binding
                && n > dial
            {
                add(
                    &mut batches[i].held,
                    held(*reason, n - dial, detail.clone(), None),
                );
            }
        }
    }
    let mut all: Vec<Held> = Vec::new();
    for b in &mut batches {
        b.held.sort_by_key(|x| std::cmp::Reverse(x.count));
        for h in &b.held {
            add(&mut all, h.clone());
        }
    }
    all.sort_by_key(|x| std::cmp::Reverse(x.count));
    Ok(DryRun {
        considered,
        would_dial: batches.iter().map(|b| b.would_dial).sum(),
        ready: batches.iter().map(|b| b.ready).sum(),
        held: all,
        batches,
        evaluated_at: dialer_core::event_body::rfc3339(evaluated_at),
    })
}
