//! Operator actions on Asterisk servers (dialerctl).

use diesel::prelude::{QueryDsl, SelectableHelper};
use diesel_async::RunQueryDsl;

use dialer_core::db::DbPool;
use dialer_core::models::{AsteriskServer, NewAsteriskServer};
use dialer_core::schema::asterisk_servers;

use crate::ops::error::{OpsError, OpsResult, Refusals};

pub async fn add(pool: &DbPool, server: NewAsteriskServer) -> OpsResult<AsteriskServer> {
    if !server.channel_template.contains("{number}") {
        return Err(OpsError::invalid(
            "channel template must contain {number}, e.g. PJSIP/{number}@trunk",
        ));
    }
    let mut conn = pool.get().await?;
    let code = server.code.clone();
    diesel::insert_into(asterisk_servers::table)
        .values(server)
        .returning(AsteriskServer::as_returning())
        .get_result(&mut conn)
        .await
        .map_err(|e| {
            Refusals::taken("server_exists", format!("server `{code}` already exists"))
                .or_invalid("invalid server")
                .error(e)
        })
}

pub async fn list(pool: &DbPool) -> OpsResult<Vec<AsteriskServer>> {
    let mut conn = pool.get().await?;
    Ok(asterisk_servers::table
        .order(asterisk_servers::code)
        .select(AsteriskServer::as_select())
        .load(&mut conn)
        .await?)
}

/// Changes an Asterisk server's settings; `None` leaves a setting as it is.
#[derive(Debug, Default, Clone, diesel::AsChangeset)]
#[diesel(table_name = asterisk_servers)]
pub struct ServerUpdate {
    pub host: Option<String>,
    pub port: Option<i32>,
    pub username: Option<String>,
    pub secret: Option<String>,
    pub max_channels: Option<i32>,
    pub max_cps: Option<i32>,
    pub channel_template: Option<String>,
    pub enabled: Option<bool>,
}

pub async fn update(pool: &DbPool, code: &str, change: ServerUpdate) -> OpsResult<AsteriskServer> {
    use diesel::prelude::ExpressionMethods;
    if change
        .channel_template
        .as_ref()
        .is_some_and(|t| !t.contains("{number}"))
    {
        return Err(OpsError::invalid("channel template must contain {number}"));
    }
    let mut conn = pool.get().await?;
    diesel::update(asterisk_servers::table.filter(asterisk_servers::code.eq(code)))
        .set((&change, asterisk_servers::updated_at.eq(diesel::dsl::now)))
        .returning(AsteriskServer::as_returning())
        .get_result(&mut conn)
        .await
        .map_err(|e| {
            Refusals::missing(format!("server `{code}` not found"))
                .or_invalid("invalid server setting")
                .error(e)
        })
}
