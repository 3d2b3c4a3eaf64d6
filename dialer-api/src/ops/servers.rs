//! Operator actions on Asterisk servers (dialerctl).

use diesel::prelude::{QueryDsl, SelectableHelper};
use diesel::sql_types::{Bool, Double, Integer, Nullable, Text};
use diesel_async::{AsyncPgConnection, RunQueryDsl};

use dialer_core::db::DbPool;
use dialer_core::domain::{ServerReport, ServerState};
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

/// A server's live state, from its row and its holder's last report.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ServerLive {
    pub id: i64,
    pub code: String,
    pub enabled: bool,
    pub state: ServerState,
    /// The dispatcher holding it, when one reports.
    pub holder: Option<String>,
    pub capacity_factor: Option<f64>,
    pub live_calls: Option<i32>,
    pub max_channels: i32,
    pub max_cps: i32,
    /// Calls per second its holder originates on it (over the last seconds).
    pub calls_per_second: Option<f64>,
    /// A PBX simulator, for test-mode accounts only.
    pub simulated: bool,
}

#[derive(diesel::QueryableByName)]
struct LiveRow {
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    id: i64,
    #[diesel(sql_type = Text)]
    code: String,
    #[diesel(sql_type = Bool)]
    enabled: bool,
    #[diesel(sql_type = Nullable<Text>)]
    holder: Option<String>,
    #[diesel(sql_type = Nullable<Bool>)]
    fresh: Option<bool>,
    #[diesel(sql_type = Nullable<Bool>)]
    connected: Option<bool>,
    #[diesel(sql_type = Nullable<Bool>)]
    draining: Option<bool>,
    #[diesel(sql_type = Nullable<Double>)]
    capacity_factor: Option<f64>,
    #[diesel(sql_type = Nullable<Integer>)]
    live_calls: Option<i32>,
    #[diesel(sql_type = Integer)]
    max_channels: i32,
    #[diesel(sql_type = Integer)]
    max_cps: i32,
    #[diesel(sql_type = Nullable<Double>)]
    calls_per_second: Option<f64>,
    #[diesel(sql_type = Bool)]
    simulated: bool,
}

/// A holder's report older than this means no dispatcher follows the server now (holders
/// write every second: `dispatcher/src/server_status.rs`).
pub const REPORT_FRESH_SECONDS: i32 = 5;

/// Every server's live state, by code.
pub async fn states(conn: &mut AsyncPgConnection) -> OpsResult<Vec<ServerLive>> {
    let rows: Vec<LiveRow> = diesel::sql_query(
        "SELECT s.id, s.code, s.enabled, t.holder, t.reported_at > now() - make_interval(secs => $1) AS fresh,
                t.connected, t.draining, t.capacity_factor, t.live_calls,
                s.max_channels, s.max_cps, t.calls_per_second, s.simulated
         FROM asterisk_servers s LEFT JOIN server_status t ON t.server_id = s.id
         ORDER BY s.code",
    )
    .bind::<Integer, _>(REPORT_FRESH_SECONDS)
    .load(conn)
    .await?;
    Ok(rows
        .into_iter()
        .map(|r| {
            let report = match (r.fresh, r.connected, r.draining, r.capacity_factor) {
                (Some(fresh), Some(connected), Some(draining), Some(capacity_factor)) => {
                    Some(ServerReport {
                        fresh,
                        connected,
                        draining,
                        capacity_factor,
                    })
                }
                _ => None,
            };
            let state = ServerState::of(r.enabled, report.as_ref());
            let live = report.is_some_and(|r| r.fresh);
            ServerLive {
                id: r.id,
                code: r.code,
                enabled: r.enabled,
                state,
                holder: r.holder.filter(|_| live),
                capacity_factor: r.capacity_factor.filter(|_| live),
                live_calls: r.live_calls.filter(|_| live),
                max_channels: r.max_channels,
                max_cps: r.max_cps,
                calls_per_second: r.calls_per_second.filter(|_| live),
                simulated: r.simulated,
            }
        })
        .collect())
}
