//! A new batch's flow after the answer: the client's settings over the account's defaults,
//! naming only prompts the account has.

use diesel::sql_types::{Array, BigInt, Bool, Jsonb, Nullable, Text};
use diesel_async::{AsyncPgConnection, RunQueryDsl};

use dialer_core::call_flow::{CallFlow, FlowOverrides};
use dialer_core::domain::AmdPolicy;

use crate::ops::{OpsError, OpsResult};

#[derive(diesel::QueryableByName)]
struct Defaults {
    #[diesel(sql_type = Text)]
    amd: AmdPolicy,
    #[diesel(sql_type = Nullable<Text>)]
    message_prompt: Option<String>,
    #[diesel(sql_type = Nullable<Text>)]
    voicemail_prompt: Option<String>,
    #[diesel(sql_type = Nullable<Jsonb>)]
    gather: Option<serde_json::Value>,
    #[diesel(sql_type = Bool)]
    record: bool,
}

/// The account's defaults (none set: a plain flow).
pub async fn account_defaults(
    conn: &mut AsyncPgConnection,
    account_id: i64,
) -> OpsResult<CallFlow> {
    let rows: Vec<Defaults> = diesel::sql_query(
        "SELECT amd, message_prompt, voicemail_prompt, gather, record \
         FROM account_call_flow WHERE account_id = $1",
    )
    .bind::<BigInt, _>(account_id)
    .load(conn)
    .await?;
    Ok(rows.into_iter().next().map_or_else(CallFlow::default, |d| {
        CallFlow::from_columns(
            d.amd,
            d.message_prompt,
            d.voicemail_prompt,
            d.gather.as_ref(),
            d.record,
        )
    }))
}

#[derive(diesel::QueryableByName)]
struct Known {
    #[diesel(sql_type = Text)]
    prompt_id: String,
}

/// Refuses a flow naming a prompt the account does not have (another account's is none).
pub async fn check_prompts(
    conn: &mut AsyncPgConnection,
    account_id: i64,
    flow: &CallFlow,
) -> OpsResult<()> {
    let named: Vec<(&str, &String)> = [
        ("message_prompt", flow.message_prompt.as_ref()),
        ("voicemail_prompt", flow.voicemail_prompt.as_ref()),
    ]
    .into_iter()
    .filter_map(|(f, p)| p.map(|p| (f, p)))
    .collect();
    if named.is_empty() {
        return Ok(());
    }
    let ids: Vec<&String> = named.iter().map(|(_, p)| *p).collect();
    let known: Vec<Known> = diesel::sql_query(
        "SELECT prompt_id FROM prompts WHERE account_id = $1 AND prompt_id = ANY($2) FOR SHARE",
    )
    .bind::<BigInt, _>(account_id)
    .bind::<Array<Text>, _>(&ids)
    .load(conn)
    .await?;
    for (field, id) in named {
        if !known.iter().any(|k| &k.prompt_id == id) {
            return Err(OpsError::Invalid(format!(
                "`{field}`: this account has no prompt `{id}`"
            )));
        }
    }
    Ok(())
}

/// The flow a batch created now gets.
pub async fn resolve(
    conn: &mut AsyncPgConnection,
    account_id: i64,
    given: FlowOverrides,
) -> OpsResult<CallFlow> {
    let defaults = account_defaults(conn, account_id).await?;
    let flow = given.over(defaults).map_err(OpsError::Invalid)?;
    check_prompts(conn, account_id, &flow).await?;
    Ok(flow)
}

/// A change of the account's defaults (`dialerctl account update`); `Some(None)` clears.
#[derive(Debug, Clone, Default)]
pub struct FlowDefaultsUpdate {
    pub amd: Option<AmdPolicy>,
    pub message_prompt: Option<Option<String>>,
    pub voicemail_prompt: Option<Option<String>>,
    pub gather: Option<Option<dialer_core::call_flow::Gather>>,
    pub record: Option<bool>,
    pub recording_retention_days: Option<i32>,
}

impl FlowDefaultsUpdate {
    pub fn is_empty(&self) -> bool {
        self.amd.is_none()
            && self.message_prompt.is_none()
            && self.voicemail_prompt.is_none()
            && self.gather.is_none()
            && self.record.is_none()
            && self.recording_retention_days.is_none()
    }
}

/// The account's defaults as they now are, with its recordings' retention.
#[derive(Debug, serde::Serialize)]
pub struct FlowDefaults {
    pub amd: AmdPolicy,
    pub message_prompt: Option<String>,
    pub voicemail_prompt: Option<String>,
    pub gather: Option<dialer_core::call_flow::Gather>,
    pub record: bool,
    pub recording_retention_days: i32,
}

#[derive(diesel::QueryableByName)]
struct Retention {
    #[diesel(sql_type = diesel::sql_types::Integer)]
    days: i32,
}

/// Applies a change of account `account_id`'s defaults, checked as a batch's settings are (a
/// prompt it names must be the account's).
pub async fn update_defaults(
    conn: &mut AsyncPgConnection,
    account_id: i64,
    change: FlowDefaultsUpdate,
) -> OpsResult<FlowDefaults> {
    if change
        .recording_retention_days
        .is_some_and(|d| !(1..=3650).contains(&d))
    {
        return Err(OpsError::Invalid(
            "recording retention is from 1 to 3650 days".to_owned(),
        ));
    }
    let current = account_defaults(conn, account_id).await?;
    let amd = match change.amd {
        Some(AmdPolicy::Off) => None,
        Some(a) => Some(a),
        None => current.amd,
    };
    let flow = CallFlow {
        amd,
        message_prompt: change.message_prompt.unwrap_or(current.message_prompt),
        voicemail_prompt: change.voicemail_prompt.unwrap_or(current.voicemail_prompt),
        gather: change.gather.unwrap_or(current.gather),
        record: change.record.unwrap_or(current.record),
    };
    flow.check().map_err(OpsError::Invalid)?;
    check_prompts(conn, account_id, &flow).await?;
    let retention: Retention = diesel::sql_query(
        "INSERT INTO account_call_flow (account_id, amd, message_prompt, voicemail_prompt, \
           gather, record, recording_retention_days, updated_at) \
         VALUES ($1, $2, $3, $4, $5, $6, COALESCE($7, 90), now()) \
         ON CONFLICT (account_id) DO UPDATE SET amd = $2, message_prompt = $3, \
           voicemail_prompt = $4, gather = $5, record = $6, \
           recording_retention_days = COALESCE($7, account_call_flow.recording_retention_days), \
           updated_at = now() \
         RETURNING recording_retention_days AS days",
    )
    .bind::<BigInt, _>(account_id)
    .bind::<Text, _>(flow.amd.unwrap_or(AmdPolicy::Off))
    .bind::<Nullable<Text>, _>(&flow.message_prompt)
    .bind::<Nullable<Text>, _>(&flow.voicemail_prompt)
    .bind::<Nullable<Jsonb>, _>(
        flow.gather
            .as_ref()
            .and_then(|g| serde_json::to_value(g).ok()),
    )
    .bind::<Bool, _>(flow.record)
    .bind::<Nullable<diesel::sql_types::Integer>, _>(change.recording_retention_days)
    .get_result(conn)
    .await?;
    Ok(FlowDefaults {
        amd: flow.amd.unwrap_or(AmdPolicy::Off),
        message_prompt: flow.message_prompt,
        voicemail_prompt: flow.voicemail_prompt,
        gather: flow.gather,
        record: flow.record,
        recording_retention_days: retention.days,
    })
}
