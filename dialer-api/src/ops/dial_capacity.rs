//! What the limits shared by many calls let go in the next second, from the live state the
//! dispatchers write every second (`server_status`, `dispatchers`) and the live attempts: the
//! connected PBXs, the account's and the servers' channels, the account's, the servers' and the
//! platform's calls per second. The dry run meets the calls nothing else holds with it.

use std::collections::HashMap;

use diesel::QueryableByName;
use diesel::sql_types::{BigInt, Integer, Jsonb, Nullable};
use diesel_async::{AsyncPgConnection, RunQueryDsl};

use dialer_core::dial_rules::HoldReason;
use dialer_core::domain::ServerState;

use crate::ops::error::OpsResult;
use crate::ops::servers::{REPORT_FRESH_SECONDS, ServerLive};

/// What one account may start in the next second, and the limit that stops the rest.
#[derive(Debug, Clone, PartialEq)]
pub struct Grant {
    pub would_dial: i64,
    /// The limit that holds the calls beyond `would_dial`, in words.
    pub binding: Option<(HoldReason, String)>,
}

/// The shared capacity, drawn down as accounts are granted calls: the real PBXs' for live
/// accounts, the simulators' for test-mode ones.
#[derive(Debug)]
pub struct Capacity {
    live: Pool,
    simulated: Pool,
    platform_cps: Option<f64>,
    /// Calls per second each account originates now, over every dispatcher.
    account_used: HashMap<i64, f64>,
}

/// The servers of one kind.
#[derive(Debug)]
struct Pool {
    /// Why no PBX of the kind takes calls, when none does.
    no_pbx: Option<String>,
    channels_total: i64,
    channels_free: i64,
    servers_cps: f64,
    /// Calls per second in use on the servers, by every account.
    servers_used: f64,
}

impl Pool {
    fn of(servers: &[ServerLive]) -> Pool {
        let taking: Vec<&ServerLive> = servers.iter().filter(|s| s.state.takes_calls()).collect();
        let factor = |s: &ServerLive| s.capacity_factor.unwrap_or(1.0);
        let channels_total: i64 = taking
            .iter()
            .map(|s| (f64::from(s.max_channels.max(0)) * factor(s)).ceil() as i64)
            .sum();
        let in_use: i64 = taking
            .iter()
            .map(|s| i64::from(s.live_calls.unwrap_or(0)))
            .sum();
        Pool {
            no_pbx: no_pbx(servers),
            channels_total,
            channels_free: (channels_total - in_use).max(0),
            servers_cps: taking
                .iter()
                .map(|s| f64::from(s.max_cps.max(0)) * factor(s))
                .sum(),
            servers_used: taking.iter().filter_map(|s| s.calls_per_second).sum(),
        }
    }
}

#[derive(QueryableByName)]
struct DispatcherRow {
    #[diesel(sql_type = Nullable<diesel::sql_types::Double>)]
    global_cps: Option<f64>,
    #[diesel(sql_type = Jsonb)]
    account_rates: serde_json::Value,
}

#[derive(QueryableByName)]
struct AccountRow {
    #[diesel(sql_type = Integer)]
    max_concurrent_calls: i32,
    #[diesel(sql_type = Integer)]
    calls_per_second: i32,
    #[diesel(sql_type = BigInt)]
    live: i64,
    #[diesel(sql_type = diesel::sql_types::Bool)]
    test_mode: bool,
}

impl Capacity {
    pub async fn load(conn: &mut AsyncPgConnection) -> OpsResult<Capacity> {
        let servers = crate::ops::servers::states(conn).await?;
        let dispatchers: Vec<DispatcherRow> = diesel::sql_query(
            "SELECT global_cps, account_rates FROM dispatchers
             WHERE status_at > now() - make_interval(secs => $1)",
        )
        .bind::<Integer, _>(REPORT_FRESH_SECONDS)
        .load(conn)
        .await?;
        let mut account_used: HashMap<i64, f64> = HashMap::new();
        for d in &dispatchers {
            if let Some(rates) = d.account_rates.as_object() {
                for (account, rate) in rates {
                    if let (Ok(a), Some(r)) = (account.parse::<i64>(), rate.as_f64()) {
                        *account_used.entry(a).or_default() += r;
                    }
                }
            }
        }
        let (simulated, live): (Vec<ServerLive>, Vec<ServerLive>) =
            servers.into_iter().partition(|s| s.simulated);
        Ok(Capacity {
            live: Pool::of(&live),
            simulated: Pool::of(&simulated),
            platform_cps: dispatchers
                .iter()
                .filter_map(|d| d.global_cps)
                .min_by(f64::total_cmp),
            account_used,
        })
    }

    /// Grants `account_id` up to `ready` calls for the next second, and draws them from the
    /// shared capacity (so the next account sees what is left).
    pub async fn grant(
        &mut self,
        conn: &mut AsyncPgConnection,
        account_id: i64,
        ready: i64,
    ) -> OpsResult<Grant> {
        let account: AccountRow = diesel::sql_query(
            "SELECT max_concurrent_calls, calls_per_second,
                    (SELECT count(*) FROM call_attempts
                     WHERE account_id = $1 AND ended_at IS NULL) AS live,
                    EXISTS (SELECT 1 FROM test_twins WHERE account_id = $1) AS test_mode
             FROM accounts WHERE id = $1",
        )
        .bind::<BigInt, _>(account_id)
        .get_result(conn)
        .await?;
        // Test-mode calls take no share of the platform's rate (they go to simulators).
        let platform_cps = self.platform_cps.filter(|_| !account.test_mode);
        let pool = match account.test_mode {
            true => &mut self.simulated,
            false => &mut self.live,
        };
        if let Some(why) = &pool.no_pbx {
            let why = match account.test_mode {
                true => format!("{why}; test mode dials simulated servers only"),
                false => why.clone(),
            };
            return Ok(Grant {
                would_dial: 0,
                binding: Some((HoldReason::NoConnectedServer, why)),
            });
        }
        let own = self.account_used.get(&account_id).copied().unwrap_or(0.0);
        let others_used: f64 = self.account_used.values().sum::<f64>() - own;
        let account_channels = i64::from(account.max_concurrent_calls) - account.live;
        let mut limits = vec![
            (
                account_channels,
                HoldReason::AccountChannels,
                format!(
                    "account channel limit: {} of {} channels in use",
                    account.live, account.max_concurrent_calls
                ),
            ),
            (
                pool.channels_free,
                HoldReason::ServerChannels,
                format!(
                    "server channel limit: {} of {} channels in use on the connected servers",
                    pool.channels_total - pool.channels_free,
                    pool.channels_total
                ),
            ),
            (
                i64::from(account.calls_per_second),
                HoldReason::AccountRate,
                format!(
                    "account rate limit: {} calls/s; the rest follow at that pace",
                    account.calls_per_second
                ),
            ),
            (
                (pool.servers_cps - (pool.servers_used - own).max(0.0)).floor() as i64,
                HoldReason::ServerRate,
                format!(
                    "server rate limit: {:.0} calls/s across the connected servers",
                    pool.servers_cps
                ),
            ),
        ];
        if let Some(platform) = platform_cps {
            limits.push((
                (platform - others_used.max(0.0)).floor() as i64,
                HoldReason::PlatformRate,
                format!("platform rate limit: {platform:.0} calls/s (DIALER_GLOBAL_CPS)"),
            ));
        }
        let mut would_dial = ready;
        let mut binding = None;
        for (limit, reason, detail) in limits {
            let limit = limit.max(0);
            if limit < would_dial {
                would_dial = limit;
                binding = Some((reason, detail));
            }
        }
        // The next account meets what is left: this one's pace for the next second is what it
        // was granted.
        pool.channels_free -= would_dial;
        pool.servers_used = (pool.servers_used - own).max(0.0) + would_dial as f64;
        self.account_used.insert(account_id, would_dial as f64);
        Ok(Grant {
            would_dial,
            binding,
        })
    }
}

/// "no PBX connected (...)" when no enabled server takes calls now, with why.
pub fn no_pbx(servers: &[ServerLive]) -> Option<String> {
    if servers.iter().any(|s| s.state.takes_calls()) {
        return None;
    }
    let codes = |state: ServerState| -> Vec<&str> {
        servers
            .iter()
            .filter(|s| s.state == state)
            .map(|s| s.code.as_str())
            .collect()
    };
    let why = if servers.iter().all(|s| s.state == ServerState::Disabled) {
        "none enabled: dialerctl server add / enable".to_owned()
    } else if !codes(ServerState::Reconnecting).is_empty() {
        format!(
            "reconnecting to {}",
            codes(ServerState::Reconnecting).join(", ")
        )
    } else if !codes(ServerState::HandedOver).is_empty() {
        "being handed over".to_owned()
    } else {
        "no dispatcher running".to_owned()
    };
    Some(format!("no PBX connected ({why})"))
}
