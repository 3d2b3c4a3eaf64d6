//! An account's audio prompts: stored whole in one row, listed, deleted unless a batch still
//! to finish (or the account's defaults) plays it.

use chrono::{DateTime, Utc};
use diesel::sql_types::{BigInt, Bytea, Integer, Nullable, Text, Timestamptz};
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use serde::Serialize;

use dialer_core::call_flow::new_prompt_id;
use dialer_core::domain::BatchStatus;

use crate::ops::{OpsError, OpsResult};
use crate::prompt_audio::{Pcm, encode_wav};

/// Where a prompt's audio came from.
#[derive(Debug, Clone, Copy)]
pub enum PromptSource<'a> {
    Wav,
    Text { text: &'a str, language: &'a str },
}

/// A prompt as the client sees it (never its audio).
#[derive(Debug, Serialize, diesel::QueryableByName, utoipa::ToSchema)]
pub struct PromptInfo {
    #[diesel(sql_type = Text)]
    pub prompt_id: String,
    /// `wav` (uploaded) or `text` (spoken by the platform).
    #[diesel(sql_type = Text)]
    pub source: String,
    #[diesel(sql_type = Nullable<Text>)]
    pub text: Option<String>,
    #[diesel(sql_type = Nullable<Text>)]
    pub language: Option<String>,
    /// 8000: every prompt is stored and played at 8 kHz.
    #[diesel(sql_type = Integer)]
    pub sample_rate: i32,
    #[diesel(sql_type = Integer)]
    pub duration_ms: i32,
    #[diesel(sql_type = Timestamptz)]
    #[serde(serialize_with = "dialer_core::event_body::serialize_rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub created_at: DateTime<Utc>,
}

const INFO: &str = "prompt_id, source, text, language, sample_rate, duration_ms, created_at";

/// Stores a prompt in the one playable form.
pub async fn create(
    conn: &mut AsyncPgConnection,
    account_id: i64,
    source: PromptSource<'_>,
    pcm: &Pcm,
) -> OpsResult<PromptInfo> {
    let (kind, text, language) = match source {
        PromptSource::Wav => ("wav", None, None),
        PromptSource::Text { text, language } => ("text", Some(text), Some(language)),
    };
    let duration_ms = i32::try_from(pcm.duration_ms())
        .map_err(|_| OpsError::Invalid("the prompt is too long".to_owned()))?;
    let audio = encode_wav(pcm);
    Ok(diesel::sql_query(format!(
        "INSERT INTO prompts (prompt_id, account_id, source, text, language, sample_rate, \
           duration_ms, audio) VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING {INFO}"
    ))
    .bind::<Text, _>(new_prompt_id())
    .bind::<BigInt, _>(account_id)
    .bind::<Text, _>(kind)
    .bind::<Nullable<Text>, _>(text)
    .bind::<Nullable<Text>, _>(language)
    .bind::<Integer, _>(pcm.sample_rate as i32)
    .bind::<Integer, _>(duration_ms)
    .bind::<Bytea, _>(audio)
    .get_result(conn)
    .await?)
}

pub async fn list(conn: &mut AsyncPgConnection, account_id: i64) -> OpsResult<Vec<PromptInfo>> {
    Ok(diesel::sql_query(format!(
        "SELECT {INFO} FROM prompts WHERE account_id = $1 ORDER BY id"
    ))
    .bind::<BigInt, _>(account_id)
    .load(conn)
    .await?)
}

#[derive(diesel::QueryableByName)]
struct Users {
    #[diesel(sql_type = BigInt)]
    batches: i64,
    #[diesel(sql_type = BigInt)]
    defaults: i64,
}

/// Deletes an account's prompt. Another account's is not found; one that a batch still to
/// finish plays, or that the account's defaults name, is `prompt_in_use`.
pub async fn delete(
    conn: &mut AsyncPgConnection,
    account_id: i64,
    prompt_id: &str,
) -> OpsResult<()> {
    conn.transaction::<_, OpsError, _>(async |conn| {
        // Locked first: a submission naming it holds it `FOR SHARE` until it commits, so the
        // usage read below (a later statement, a later snapshot) sees that batch.
        let found = diesel::sql_query(
            "SELECT 1 FROM prompts WHERE account_id = $1 AND prompt_id = $2 FOR UPDATE",
        )
        .bind::<BigInt, _>(account_id)
        .bind::<Text, _>(prompt_id)
        .execute(conn)
        .await?;
        if found == 0 {
            return Err(OpsError::NotFound(format!("no prompt `{prompt_id}`")));
        }
        let users: Users = diesel::sql_query(format!(
            "SELECT (SELECT count(*) FROM batches WHERE account_id = $1 \
                       AND status NOT IN ('{completed}', '{cancelled}') \
                       AND (message_prompt = $2 OR voicemail_prompt = $2)) AS batches, \
                    (SELECT count(*) FROM account_call_flow WHERE account_id = $1 \
                       AND (message_prompt = $2 OR voicemail_prompt = $2)) AS defaults",
            completed = BatchStatus::Completed,
            cancelled = BatchStatus::Cancelled,
        ))
        .bind::<BigInt, _>(account_id)
        .bind::<Text, _>(prompt_id)
        .get_result(conn)
        .await?;
        if users.batches > 0 || users.defaults > 0 {
            let by = if users.batches > 0 {
                format!("{} batch(es) not finished yet", users.batches)
            } else {
                "the account's default settings".to_owned()
            };
            return Err(OpsError::Conflict {
                code: "prompt_in_use",
                message: format!("prompt `{prompt_id}` is played by {by}"),
            });
        }
        diesel::sql_query("DELETE FROM prompts WHERE account_id = $1 AND prompt_id = $2")
            .bind::<BigInt, _>(account_id)
            .bind::<Text, _>(prompt_id)
            .execute(conn)
            .await?;
        Ok(())
    })
    .await
}

#[derive(diesel::QueryableByName)]
struct Audio {
    #[diesel(sql_type = Bytea)]
    audio: Vec<u8>,
}

/// A prompt's WAV, for the PBX (the URL's signature was checked by the caller).
pub async fn audio(conn: &mut AsyncPgConnection, prompt_id: &str) -> OpsResult<Option<Vec<u8>>> {
    let rows: Vec<Audio> = diesel::sql_query("SELECT audio FROM prompts WHERE prompt_id = $1")
        .bind::<Text, _>(prompt_id)
        .load(conn)
        .await?;
    Ok(rows.into_iter().next().map(|a| a.audio))
}
