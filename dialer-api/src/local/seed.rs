//! Accounts and servers of a local run, made through the same code as `dialerctl account create`
//! and `dialerctl server add`.

use dialer_core::db::DbPool;
use dialer_core::models::NewAsteriskServer;

use crate::accounts::{self, AccountUpdate, CreateAccount, CreatedAccount};
use crate::local::platform::RunningSim;
use crate::servers;

#[derive(Debug, thiserror::Error)]
#[error("{what}: {message}")]
pub struct SeedError {
    what: String,
    message: String,
}

/// Creates account `code` calling back `callback_url`, then applies `settings`.
pub async fn account(
    pool: &DbPool,
    code: &str,
    country: &str,
    callback_url: &str,
    settings: AccountUpdate,
) -> Result<CreatedAccount, SeedError> {
    let err = |e: crate::api_error::ApiError| SeedError {
        what: format!("account {code}"),
        message: e.message,
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

/// Registers each simulator as an Asterisk server (login `dialer`/`dialer`, the simulator's
/// default) dialing `PJSIP/{number}@trunk`.
pub async fn servers(
    pool: &DbPool,
    sims: &[RunningSim],
    max_channels: i32,
    max_cps: i32,
) -> Result<(), SeedError> {
    for s in sims {
        servers::add(
            pool,
            NewAsteriskServer {
                code: s.code.clone(),
                host: s.ami.ip().to_string(),
                port: i32::from(s.ami.port()),
                username: "dialer".to_owned(),
                secret: "dialer".to_owned(),
                max_channels,
                max_cps,
                channel_template: "PJSIP/{number}@trunk".to_owned(),
                enabled: true,
            },
        )
        .await
        .map_err(|e| SeedError {
            what: format!("server {}", s.code),
            message: e.message,
        })?;
    }
    Ok(())
}
