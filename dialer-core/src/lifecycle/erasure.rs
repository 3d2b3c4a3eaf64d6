//! Erasure of one phone number in an account (privacy law's right to erasure, `DELETE
//! /numbers/{phone_number}`): every call to it, with its attempts, events, deliveries and
//! recordings (their rows cascade from the call), and its `custom_data`. The account's
//! do-not-call entry for the number stays: it is what keeps the person from being called again.
//!
//! A call in progress (dialing, ringing, answered) is never cut from under the dispatcher: the
//! erasure is refused until it ends. Calls not dialed yet are deleted without a callback (the
//! client asked for them to be gone); a dial job already published finds no call and is dropped.
//! A batch left with nothing to finish completes as usual.

use diesel::QueryableByName;
use diesel::sql_types::{Array, BigInt, Bool, Text};
use diesel_async::{AsyncPgConnection, RunQueryDsl};

use super::completion::{BatchRef, LifecycleError, complete_batch_if_done};
use crate::domain::CallStatus;

/// What one erasure removed.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Erased {
    pub calls: i64,
    pub events: i64,
    /// Object keys of the recordings whose rows went: their files are the caller's to delete.
    pub recordings: Vec<String>,
}

/// Why nothing was erased.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErasureRefused {
    /// A call to the number is in progress now.
    CallInProgress,
}

#[derive(QueryableByName)]
struct CallRow {
    #[diesel(sql_type = BigInt)]
    id: i64,
    #[diesel(sql_type = Text)]
    status: CallStatus,
    #[diesel(sql_type = BigInt)]
    batch_pk: i64,
    #[diesel(sql_type = BigInt)]
    batch_id: i64,
    #[diesel(sql_type = Text)]
    accountcode: String,
    #[diesel(sql_type = Bool)]
    batch_events: bool,
}

#[derive(QueryableByName)]
struct Counted {
    #[diesel(sql_type = BigInt)]
    events: i64,
    #[diesel(sql_type = Array<Text>)]
    keys: Vec<String>,
}

/// Object keys of the recordings of the account's calls to `phone_e164` (read without locks,
/// so their files can go before the rows).
pub async fn recording_keys(
    conn: &mut AsyncPgConnection,
    account_id: i64,
    phone_e164: &str,
) -> Result<Vec<String>, LifecycleError> {
    #[derive(QueryableByName)]
    struct Key {
        #[diesel(sql_type = Text)]
        object_key: String,
    }
    let keys: Vec<Key> = diesel::sql_query(
        "SELECT r.object_key FROM recordings r JOIN calls c ON c.id = r.call_pk \
         WHERE c.account_id = $1 AND c.phone_e164 = $2",
    )
    .bind::<BigInt, _>(account_id)
    .bind::<Text, _>(phone_e164)
    .load(conn)
    .await?;
    Ok(keys.into_iter().map(|k| k.object_key).collect())
}

/// Erases every call of the account to `phone_e164`, inside the caller's transaction.
pub async fn erase_number(
    conn: &mut AsyncPgConnection,
    account_id: i64,
    phone_e164: &str,
) -> Result<Result<Erased, ErasureRefused>, LifecycleError> {
    let calls: Vec<CallRow> = diesel::sql_query(
        "SELECT c.id, c.status, c.batch_pk, b.batch_id, a.accountcode, \
                a.callback_batch_events AS batch_events \
         FROM calls c JOIN batches b ON b.id = c.batch_pk JOIN accounts a ON a.id = c.account_id \
         WHERE c.account_id = $1 AND c.phone_e164 = $2 ORDER BY c.id FOR UPDATE OF c",
    )
    .bind::<BigInt, _>(account_id)
    .bind::<Text, _>(phone_e164)
    .load(conn)
    .await?;
    if calls
        .iter()
        .any(|c| !c.status.is_final() && !c.status.is_undialed())
    {
        return Ok(Err(ErasureRefused::CallInProgress));
    }
    if calls.is_empty() {
        return Ok(Ok(Erased::default()));
    }
    let ids: Vec<i64> = calls.iter().map(|c| c.id).collect();
    let counted: Counted = diesel::sql_query(
        "SELECT (SELECT count(*) FROM call_events WHERE call_pk = ANY($1)) AS events, \
                ARRAY(SELECT object_key FROM recordings WHERE call_pk = ANY($1)) AS keys",
    )
    .bind::<Array<BigInt>, _>(&ids)
    .get_result(conn)
    .await?;
    // Attempts, events (their deliveries, queue entries, replays), dial jobs and recordings
    // cascade from the call.
    let deleted = diesel::sql_query("DELETE FROM calls WHERE id = ANY($1)")
        .bind::<Array<BigInt>, _>(&ids)
        .execute(conn)
        .await?;
    let mut batches: Vec<&CallRow> = Vec::new();
    for c in &calls {
        if !batches.iter().any(|b| b.batch_pk == c.batch_pk) {
            batches.push(c);
        }
    }
    for b in batches {
        let batch = BatchRef {
            batch_pk: b.batch_pk,
            account_id,
            accountcode: &b.accountcode,
            batch_id: b.batch_id,
            batch_events: b.batch_events,
        };
        complete_batch_if_done(conn, &batch).await?;
    }
    Ok(Ok(Erased {
        calls: deleted as i64,
        events: counted.events,
        recordings: counted.keys,
    }))
}
