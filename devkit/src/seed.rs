//! Accounts and servers of a local run, made through the same code as `dialerctl account create`
//! and `dialerctl server add`.

use std::time::Duration;

use dialer_core::db::DbPool;
use dialer_core::models::NewAsteriskServer;

use dialer_api::ops::accounts::{self, AccountUpdate, CreateAccount, CreatedAccount};
use dialer_api::ops::servers;

use crate::platform::RunningSim;
use crate::receiver::Receiver;

#[derive(Debug, thiserror::Error)]
#[error("{what}: {message}")]
pub struct SeedError {
    what: String,
    message: String,
}

/// "No limit" for account and server settings that must be positive integers.
pub const UNLIMITED: i32 = 1_000_000;

/// Account settings with every limit off, room for `calls` queued and dialed today, and
/// submissions of up to 50,000 rows: what a benchmark measures is the platform, not a quota.
pub fn limits_off(calls: usize) -> AccountUpdate {
    AccountUpdate {
        calls_per_second: Some(UNLIMITED),
        max_concurrent_calls: Some(UNLIMITED),
        max_rows_per_request: Some(50_000),
        max_queued_calls: Some(10 * calls as i64),
        max_calls_per_day: Some(10 * calls as i64),
        api_requests_per_second: Some(1000),
        ..AccountUpdate::default()
    }
}

/// Creates account `code` with `settings`, calling back a placeholder until
/// [`set_callback_url`] (its receiver needs the secret, which exists only once the account does).
pub async fn account(
    pool: &DbPool,
    code: &str,
    country: &str,
    settings: AccountUpdate,
) -> Result<CreatedAccount, SeedError> {
    let callback_url = "http://127.0.0.1:9/callbacks";
    let err = |e: dialer_api::ops::OpsError| SeedError {
        what: format!("account {code}"),
        message: e.to_string(),
    };
    let mut created = accounts::create(
        pool,
        CreateAccount {
            accountcode: code.to_owned(),
            name: format!("{code} (local run)"),
            default_country: country.to_owned(),
            timezone: "UTC".to_owned(),
            callback_url: Some(callback_url.to_owned()),
            caller_id: Some("+15550100000".to_owned()),
        },
        true,
    )
    .await
    .map_err(err)?;
    created.account = accounts::update(pool, code, settings, true)
        .await
        .map_err(err)?;
    Ok(created)
}

pub async fn set_callback_url(pool: &DbPool, code: &str, url: &str) -> Result<(), SeedError> {
    let change = AccountUpdate {
        callback_url: Some(Some(url.to_owned())),
        ..AccountUpdate::default()
    };
    accounts::update(pool, code, change, true)
        .await
        .map(|_| ())
        .map_err(|e| SeedError {
            what: format!("account {code}"),
            message: e.to_string(),
        })
}

/// An account whose callbacks go to a [`Receiver`] of this process (503 for `refuse_for`).
pub async fn account_with_receiver(
    pool: &DbPool,
    code: &str,
    country: &str,
    settings: AccountUpdate,
    refuse_for: Duration,
) -> Result<(CreatedAccount, Receiver), SeedError> {
    let created = account(pool, code, country, settings).await?;
    let receiver =
        Receiver::start(&created.callback_secret, refuse_for).map_err(|e| SeedError {
            what: "callback receiver".to_owned(),
            message: e.to_string(),
        })?;
    set_callback_url(pool, code, &receiver.url).await?;
    Ok((created, receiver))
}

/// An Asterisk server to register (what `dialerctl server add` takes).
#[derive(Debug, Clone)]
pub struct ServerSeed {
    pub code: String,
    pub host: String,
    pub port: u16,
    pub username: String,
    pub secret: String,
    pub channel_template: String,
}

impl ServerSeed {
    /// A simulator (login `dialer`/`dialer`, its default) dialing `PJSIP/{number}@trunk`.
    pub fn of_sim(s: &RunningSim) -> ServerSeed {
        ServerSeed {
            code: s.code.clone(),
            host: s.ami.ip().to_string(),
            port: s.ami.port(),
            username: "dialer".to_owned(),
            secret: "dialer".to_owned(),
            channel_template: "PJSIP/{number}@trunk".to_owned(),
        }
    }
}

/// Registers each simulator as an Asterisk server.
pub async fn servers(
    pool: &DbPool,
    sims: &[RunningSim],
    max_channels: i32,
    max_cps: i32,
) -> Result<(), SeedError> {
    for s in sims {
        server(pool, &ServerSeed::of_sim(s), max_channels, max_cps).await?;
    }
    Ok(())
}

pub async fn server(
    pool: &DbPool,
    s: &ServerSeed,
    max_channels: i32,
    max_cps: i32,
) -> Result<(), SeedError> {
    servers::add(
        pool,
        NewAsteriskServer {
            code: s.code.clone(),
            host: s.host.clone(),
            port: i32::from(s.port),
            username: s.username.clone(),
            secret: s.secret.clone(),
            max_channels,
            max_cps,
            channel_template: s.channel_template.clone(),
            enabled: true,
            simulated: false,
        },
    )
    .await
    .map(|_| ())
    .map_err(|e| SeedError {
        what: format!("server {}", s.code),
        message: e.to_string(),
    })
}

/// The account sends no callbacks: its events are stored `skipped`.
pub async fn clear_callback_url(pool: &DbPool, code: &str) -> Result<(), SeedError> {
    let change = AccountUpdate {
        callback_url: Some(None),
        ..AccountUpdate::default()
    };
    accounts::update(pool, code, change, true)
        .await
        .map(|_| ())
        .map_err(|e| SeedError {
            what: format!("account {code}"),
            message: e.to_string(),
        })
}
