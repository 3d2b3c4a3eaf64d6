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
pub async fn account_defaults(conn: &mut AsyncPgConnection, account_id: i64) -> OpsResult<CallFlow> {
    let rows: Vec<Defaults> = diesel::sql_query(
        "SELECT amd, message_prompt, voicemail_prompt, gather, record \
         FROM account_call_flow WHERE account_id = $1",
    )
    .bind::<BigInt, _>(account_id)
    .load(conn)
    .await?;
    Ok(rows.into_iter().next().map_or_else(CallFlow::default, |d| {
        CallFlow::from_columns(d.amd, d.message_prompt, d.voicemail_prompt, d.gather.as_ref(), d.record)
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
