//! `dialerctl account ...`: create, list, show, update, rotate keys and secrets, suspend.

use anyhow::Context;
use clap::{Args, Subcommand};
use serde_json::{Value, json};

use dialer_api::ops::accounts::{self, AccountUpdate, CreateAccount};
use dialer_api::ops::call_flow::{self, FlowDefaultsUpdate};
use dialer_api::ops::callbacks;
use dialer_core::call_flow::Gather;
use dialer_core::domain::AmdPolicy;
use dialer_core::event_body::rfc3339;
use dialer_core::models::Account;

use crate::Ctx;
use crate::output::{Col, Output, Table};

#[derive(Subcommand)]
pub enum AccountCmd {
    /// Create an account; prints its API key and callback secret once.
    Create {
        /// The accountcode, e.g. ACME.
        code: String,
        #[arg(long, default_value = "")]
        name: String,
        /// Default country of submitted numbers (ISO code).
        #[arg(long, default_value = "IN")]
        country: String,
        #[arg(long, default_value = "UTC")]
        timezone: String,
        #[arg(long)]
        callback_url: Option<String>,
        #[arg(long)]
        caller_id: Option<String>,
    },
    List,
    Show {
        code: String,
    },
    /// Change settings, limits and quotas.
    Update(Box<AccountUpdateArgs>),
    /// Add a new API key (printed once); `--revoke-previous` stops the older keys now.
    RotateKey {
        code: String,
        #[arg(long)]
        revoke_previous: bool,
    },
    /// A new callback secret, printed once; the old one keeps signing beside it for the grace
    /// period (and alone in X-Signature until it ends), so the client can switch.
    RotateSecret {
        #[arg(long)]
        account: String,
        /// Hours the old secret keeps signing (0: it stops at once; at most 720).
        #[arg(long, default_value_t = 24)]
        grace_hours: u32,
    },
    /// Refuse the account's requests (403) until `activate`.
    Suspend {
        code: String,
    },
    Activate {
        code: String,
    },
}

#[derive(Args)]
pub struct AccountUpdateArgs {
    code: String,
    #[arg(long)]
    name: Option<String>,
    #[arg(long)]
    country: Option<String>,
    #[arg(long)]
    timezone: Option<String>,
    /// JSON such as {"start":"09:00","end":"21:00","days":["mon","tue"]}; `none` clears it.
    #[arg(long)]
    calling_hours: Option<String>,
    /// `none` clears it.
    #[arg(long)]
    caller_id: Option<String>,
    #[arg(long)]
    dial_context: Option<String>,
    #[arg(long)]
    dial_exten: Option<String>,
    #[arg(long)]
    ring_timeout: Option<i32>,
    #[arg(long)]
    max_attempts: Option<i32>,
    #[arg(long)]
    retry_delay: Option<i32>,
    /// Comma-separated dispositions, e.g. busy,no_answer.
    #[arg(long)]
    retry_on: Option<String>,
    #[arg(long)]
    max_call_seconds: Option<i32>,
    /// Comma-separated ISO codes; empty string: every country.
    #[arg(long)]
    allowed_countries: Option<String>,
    /// Comma-separated E.164 prefixes such as +9198; empty string: none.
    #[arg(long)]
    allowed_prefixes: Option<String>,
    #[arg(long)]
    redial_window_hours: Option<i32>,
    #[arg(long)]
    max_rows_per_request: Option<i32>,
    #[arg(long)]
    max_queued_calls: Option<i64>,
    #[arg(long)]
    max_calls_per_day: Option<i64>,
    #[arg(long)]
    calls_per_second: Option<i32>,
    #[arg(long)]
    max_concurrent_calls: Option<i32>,
    #[arg(long)]
    api_requests_per_second: Option<i32>,
    /// `none` clears it.
    #[arg(long)]
    callback_url: Option<String>,
    #[arg(long)]
    batch_events: Option<bool>,
    /// A PEM file with the CA certificate(s) of a private callback endpoint (trusted instead of
    /// the public roots for this account); `none` clears it.
    #[arg(long, value_name = "PEM_FILE")]
    callback_ca_file: Option<String>,
    /// After the answer, the default of new batches: `off`, `detect`, `hangup_machine`,
    /// `voicemail`.
    #[arg(long)]
    amd: Option<String>,
    /// The default `message_prompt` (`prm_...`); `none` clears it.
    #[arg(long)]
    message_prompt: Option<String>,
    /// The default `voicemail_prompt` (`prm_...`); `none` clears it.
    #[arg(long)]
    voicemail_prompt: Option<String>,
    /// The default `gather`, JSON such as
    /// {"max_digits":1,"timeout_seconds":5,"finish_on_key":"#","opt_out_digit":"9"}; `none` clears it.
    #[arg(long)]
    gather: Option<String>,
    /// Whether new batches record their answered calls by default.
    #[arg(long)]
    record: Option<bool>,
    /// Days a recording is kept (1-3650; default 90).
    #[arg(long)]
    recording_retention_days: Option<i32>,
}

pub async fn run(ctx: &Ctx, cmd: AccountCmd) -> anyhow::Result<Output> {
    let allow_loopback = ctx.config.allow_http_loopback_callbacks;
    match cmd {
        AccountCmd::Create {
            code,
            name,
            country,
            timezone,
            callback_url,
            caller_id,
        } => {
            let new = CreateAccount {
                accountcode: code,
                name,
                default_country: country,
                timezone,
                callback_url,
                caller_id,
            };
            let created = accounts::create(&ctx.pool, new, allow_loopback).await?;
            let text = format!(
                "account {} created\napi key:         {}\ncallback secret: {}\n(shown once: store them now)",
                created.account.accountcode, created.api_key, created.callback_secret
            );
            let json = json!({
                "account": account_json(&created.account),
                "api_key": created.api_key,
                "callback_secret": created.callback_secret,
            });
            Output::success(json, text)
        }
        AccountCmd::List => {
            let list = accounts::list(&ctx.pool).await?;
            const COLS: &[Col] = &[Col::Left(20), Col::Left(10), Col::Left(8), Col::Rest];
            let mut table = Table::new(COLS, &["ACCOUNTCODE", "STATUS", "COUNTRY", "CALLBACK URL"]);
            for a in &list {
                let url = a.callback_url.as_deref().unwrap_or("-");
                table.row(&[&a.accountcode, &a.status, &a.default_country, &url]);
            }
            let accounts: Vec<Value> = list.iter().map(account_json).collect();
            Output::success(json!({ "accounts": accounts }), table.into_text())
        }
        AccountCmd::Show { code } => {
            let a = ctx.account(&code).await?;
            let settings = account_json(&a);
            let text = serde_json::to_string_pretty(&settings)?;
            Output::success(json!({ "account": settings }), text)
        }
        AccountCmd::Update(u) => {
            let code = u.code.clone();
            let flow = flow_update_of(&u)?;
            let change = update_of(*u)?;
            let a = accounts::update(&ctx.pool, &code, change, allow_loopback).await?;
            let mut json = json!({ "account": account_json(&a) });
            if !flow.is_empty() {
                let mut conn = ctx.pool.get().await?;
                let defaults = call_flow::update_defaults(&mut conn, a.id, flow).await?;
                json["call_flow"] = serde_json::to_value(defaults)?;
            }
            let text = format!("account {} updated", a.accountcode);
            Output::success(json, text)
        }
        AccountCmd::RotateKey {
            code,
            revoke_previous,
        } => {
            let (key, revoked) = accounts::rotate_key(&ctx.pool, &code, revoke_previous).await?;
            let text = format!(
                "new api key for {code}: {key}\n(shown once; {revoked} previous key(s) revoked)"
            );
            Output::success(json!({"api_key": key, "revoked": revoked}), text)
        }
        AccountCmd::RotateSecret {
            account,
            grace_hours,
        } => rotate_secret(ctx, account, grace_hours).await,
        AccountCmd::Suspend { code } => set_status(ctx, &code, "suspended").await,
        AccountCmd::Activate { code } => set_status(ctx, &code, "active").await,
    }
}

async fn rotate_secret(ctx: &Ctx, account: String, grace_hours: u32) -> anyhow::Result<Output> {
    let grace = callbacks::grace_from_hours(grace_hours)?;
    let rotated = callbacks::rotate_secret(&ctx.pool, &account, grace).await?;
    let until = rotated.previous_valid_until.map(rfc3339);
    let previous = match &until {
        Some(t) => format!("the previous secret keeps signing until {t}"),
        None => "the previous secret no longer signs".to_owned(),
    };
    let text = format!(
        "new callback secret for {account}: {}\n({previous}; shown once: store it now)",
        rotated.secret
    );
    let json = json!({
        "accountcode": account,
        "callback_secret": rotated.secret,
        "previous_valid_until": until,
    });
    Output::success(json, text)
}

async fn set_status(ctx: &Ctx, code: &str, status: &str) -> anyhow::Result<Output> {
    let a = accounts::set_status(&ctx.pool, code, status).await?;
    let text = format!("account {} is {}", a.accountcode, a.status);
    Output::success(json!({ "account": account_json(&a) }), text)
}

fn account_json(a: &Account) -> Value {
    serde_json::to_value(a.settings()).unwrap_or(Value::Null)
}

/// The change `account update` asks for.
fn update_of(u: AccountUpdateArgs) -> anyhow::Result<AccountUpdate> {
    let calling_hours = match u.calling_hours.as_deref() {
        None => None,
        Some("" | "none") => Some(None),
        Some(text) => Some(Some(
            serde_json::from_str::<Value>(text).context("--calling-hours is not JSON")?,
        )),
    };
    let callback_ca_cert = match u.callback_ca_file.as_deref() {
        None => None,
        Some("" | "none") => Some(None),
        Some(path) => {
            Some(Some(std::fs::read_to_string(path).with_context(|| {
                format!("--callback-ca-file: cannot read `{path}`")
            })?))
        }
    };
    Ok(AccountUpdate {
        name: u.name,
        default_country: u.country,
        timezone: u.timezone,
        calling_hours,
        caller_id: clearable(u.caller_id),
        dial_context: u.dial_context,
        dial_exten: u.dial_exten,
        ring_timeout_seconds: u.ring_timeout,
        max_attempts: u.max_attempts,
        retry_delay_seconds: u.retry_delay,
        retry_on: list_arg(u.retry_on),
        max_call_seconds: u.max_call_seconds,
        allowed_countries: list_arg(u.allowed_countries),
        allowed_prefixes: list_arg(u.allowed_prefixes),
        redial_window_hours: u.redial_window_hours,
        max_rows_per_request: u.max_rows_per_request,
        max_queued_calls: u.max_queued_calls,
        max_calls_per_day: u.max_calls_per_day,
        calls_per_second: u.calls_per_second,
        max_concurrent_calls: u.max_concurrent_calls,
        api_requests_per_second: u.api_requests_per_second,
        callback_url: clearable(u.callback_url),
        callback_batch_events: u.batch_events,
        callback_ca_cert,
    })
}

/// The change of the account's defaults after the answer that `account update` asks for.
fn flow_update_of(u: &AccountUpdateArgs) -> anyhow::Result<FlowDefaultsUpdate> {
    let amd = u
        .amd
        .as_deref()
        .map(|a| a.parse::<AmdPolicy>())
        .transpose()
        .context("--amd is one of off, detect, hangup_machine, voicemail")?;
    let gather = match u.gather.as_deref() {
        None => None,
        Some("" | "none") => Some(None),
        Some(text) => {
            let value: Value = serde_json::from_str(text).context("--gather is not JSON")?;
            Some(Some(
                Gather::parse(&value).map_err(|e| anyhow::anyhow!("--gather: {e}"))?,
            ))
        }
    };
    Ok(FlowDefaultsUpdate {
        amd,
        message_prompt: clearable(u.message_prompt.clone()),
        voicemail_prompt: clearable(u.voicemail_prompt.clone()),
        gather,
        record: u.record,
        recording_retention_days: u.recording_retention_days,
    })
}

/// A comma-separated list; blanks dropped.
fn list_arg(v: Option<String>) -> Option<Vec<String>> {
    v.map(|s| {
        s.split(',')
            .map(str::trim)
            .filter(|x| !x.is_empty())
            .map(str::to_owned)
            .collect()
    })
}

/// `none` (or empty) clears an optional setting.
fn clearable(v: Option<String>) -> Option<Option<String>> {
    v.map(|s| {
        if s.is_empty() || s == "none" {
            None
        } else {
            Some(s)
        }
    })
}
