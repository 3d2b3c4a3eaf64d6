//! Erasing one phone number from an account (`DELETE /numbers/{phone_number}`): the rows in one
//! transaction (`dialer_core::lifecycle::erasure`), the recording files before them (a file whose
//! row is gone could never be found again) and again after them for any that arrived meanwhile.

use diesel_async::AsyncConnection;

use dialer_core::db::DbPool;
use dialer_core::lifecycle::erasure::{self, Erased, ErasureRefused};
use dialer_core::phone::E164;

use crate::ops::error::{OpsError, OpsResult};
use crate::recording_store::RecordingStore;

/// What an erasure removed, as the account is told.
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub struct ErasureOutcome {
    /// E.164.
    pub phone_number: String,
    pub calls: i64,
    pub events: i64,
    pub recordings: usize,
    /// The account's do-not-call entry for the number, which erasure keeps.
    pub do_not_call_kept: bool,
}

pub async fn erase(
    pool: &DbPool,
    files: &RecordingStore,
    account_id: i64,
    number: &E164,
) -> OpsResult<ErasureOutcome> {
    let mut conn = pool.get().await?;
    let first = erasure::recording_keys(&mut conn, account_id, number.as_str())
        .await
        .map_err(OpsError::internal)?;
    for key in &first {
        files
            .delete(key)
            .await
            .map_err(|e| OpsError::Unavailable(format!("recording store: {e}")))?;
    }
    let erased: Erased = conn
        .transaction::<_, OpsError, _>(async |conn| {
            match erasure::erase_number(conn, account_id, number.as_str())
                .await
                .map_err(OpsError::internal)?
            {
                Ok(erased) => Ok(erased),
                Err(ErasureRefused::CallInProgress) => Err(OpsError::conflict(
                    "call_in_progress",
                    "a call to this number is in progress; erase it once the call has ended",
                )),
            }
        })
        .await?;
    for key in erased.recordings.iter().filter(|k| !first.contains(k)) {
        if let Err(e) = files.delete(key).await {
            // The row is gone: an operator must delete the file by hand.
            tracing::error!(object_key = %key, error = %e, "recording file left after an erasure");
        }
    }
    let do_not_call_kept = {
        use dialer_core::schema::dnc_numbers;
        use diesel::prelude::{ExpressionMethods, QueryDsl};
        use diesel_async::RunQueryDsl;
        diesel::select(diesel::dsl::exists(
            dnc_numbers::table
                .filter(dnc_numbers::account_id.eq(account_id))
                .filter(dnc_numbers::phone_e164.eq(number.as_str())),
        ))
        .get_result(&mut conn)
        .await?
    };
    tracing::info!(
        phone = %number.masked(),
        calls = erased.calls,
        events = erased.events,
        recordings = erased.recordings.len(),
        "number erased by the account"
    );
    Ok(ErasureOutcome {
        phone_number: number.as_str().to_owned(),
        calls: erased.calls,
        events: erased.events,
        recordings: erased.recordings.len(),
        do_not_call_kept,
    })
}
