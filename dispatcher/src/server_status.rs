//! This dispatcher's live state in PostgreSQL, written every second in one statement: its row of
//! `dispatchers` (the platform rate limit it applies, the calls per second it originates per
//! account) and a row of `server_status` per server it holds (connected or not, handed over,
//! the overload back-off, calls on it, calls per second). Only the holder knows its AMI session;
//! the API reads these rows for the dry run, `waiting_reason` and the operators' views.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::time::{Duration, Instant};

use diesel::sql_types::{Array, BigInt, Bool, Double, Integer, Jsonb, Nullable, Text};
use diesel_async::{AsyncPgConnection, RunQueryDsl};

use dialer_core::prepared::PrepareOnce;

/// How often the holder writes.
pub const EVERY: Duration = Duration::from_secs(1);

/// The span the reported rates are measured over: long enough to smooth the pacing's bursts.
const RATE_WINDOW: Duration = Duration::from_secs(5);

/// One held server, now.
#[derive(Debug, Clone, PartialEq)]
pub struct Report {
    pub server_id: i64,
    pub connected: bool,
    pub draining: bool,
    pub capacity_factor: f64,
    pub live_calls: i32,
    pub calls_per_second: f64,
}

/// The dispatcher's own state, now.
#[derive(Debug, Clone, PartialEq)]
pub struct DispatcherReport {
    pub global_cps: Option<f64>,
    /// Calls per second originated, by account (those with any in the window).
    pub account_rates: BTreeMap<i64, f64>,
}

/// Originates sent since start, by (account, server), as the registry counts them.
pub type SentCounts = HashMap<(i64, i64), u64>;

/// Originate rates over the last [`RATE_WINDOW`], from the registry's running counts.
#[derive(Debug, Default)]
pub struct RateMeter {
    samples: VecDeque<(Instant, SentCounts)>,
}

/// Calls per second by account and by server.
#[derive(Debug, Default, PartialEq)]
pub struct Rates {
    pub by_account: BTreeMap<i64, f64>,
    pub by_server: HashMap<i64, f64>,
}

impl RateMeter {
    /// Adds the counts read at `now` and returns the rates since the oldest sample kept.
    pub fn rates(&mut self, now: Instant, counts: SentCounts) -> Rates {
        self.samples.push_back((now, counts));
        // Keep one sample at least RATE_WINDOW old, so the span is the whole window.
        while self.samples.len() > 2
            && self
                .samples
                .get(1)
                .is_some_and(|(t, _)| now.duration_since(*t) >= RATE_WINDOW)
        {
            self.samples.pop_front();
        }
        let mut rates = Rates::default();
        let (Some((t0, first)), Some((_, last))) = (self.samples.front(), self.samples.back())
        else {
            return rates;
        };
        let span = now.duration_since(*t0).as_secs_f64();
        if span <= 0.0 {
            return rates;
        }
        for (&(account, server), &n) in last {
            let delta = n.saturating_sub(first.get(&(account, server)).copied().unwrap_or(0));
            if delta == 0 {
                continue;
            }
            let r = delta as f64 / span;
            *rates.by_account.entry(account).or_default() += r;
            *rates.by_server.entry(server).or_default() += r;
        }
        rates
    }
}

/// Writes this dispatcher's state and the rows of the servers it holds, in one statement.
pub async fn publish(
    conn: &mut AsyncPgConnection,
    holder: &str,
    me: &DispatcherReport,
    reports: &[Report],
) -> diesel::QueryResult<()> {
    let ids: Vec<i64> = reports.iter().map(|r| r.server_id).collect();
    let connected: Vec<bool> = reports.iter().map(|r| r.connected).collect();
    let draining: Vec<bool> = reports.iter().map(|r| r.draining).collect();
    let factors: Vec<f64> = reports.iter().map(|r| r.capacity_factor).collect();
    let live: Vec<i32> = reports.iter().map(|r| r.live_calls).collect();
    let cps: Vec<f64> = reports.iter().map(|r| r.calls_per_second).collect();
    let account_rates: serde_json::Map<String, serde_json::Value> = me
        .account_rates
        .iter()
        .map(|(a, r)| (a.to_string(), serde_json::Value::from(*r)))
        .collect();
    diesel::sql_query(
        "WITH me AS (UPDATE dispatchers SET global_cps = $8, account_rates = $9, status_at = now() \
             WHERE id = $2) \
         INSERT INTO server_status (server_id, holder, connected, draining, capacity_factor, live_calls, calls_per_second, reported_at) \
         SELECT s, $2, c, d, f, l, r, now() FROM unnest($1::bigint[], $3::bool[], $4::bool[], $5::float8[], $6::int[], $7::float8[]) AS u(s, c, d, f, l, r) \
         WHERE EXISTS (SELECT 1 FROM asterisk_servers a WHERE a.id = u.s) \
         ON CONFLICT (server_id) DO UPDATE SET holder = EXCLUDED.holder, connected = EXCLUDED.connected, \
             draining = EXCLUDED.draining, capacity_factor = EXCLUDED.capacity_factor, \
             live_calls = EXCLUDED.live_calls, calls_per_second = EXCLUDED.calls_per_second, \
             reported_at = EXCLUDED.reported_at",
    )
    .bind::<Array<BigInt>, _>(&ids)
    .bind::<Text, _>(holder)
    .bind::<Array<Bool>, _>(&connected)
    .bind::<Array<Bool>, _>(&draining)
    .bind::<Array<Double>, _>(&factors)
    .bind::<Array<Integer>, _>(&live)
    .bind::<Array<Double>, _>(&cps)
    .bind::<Nullable<Double>, _>(me.global_cps)
    .bind::<Jsonb, _>(serde_json::Value::Object(account_rates))
    .prepared()
    .execute(conn)
    .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_over_the_window() {
        let mut meter = RateMeter::default();
        let t0 = Instant::now();
        let at = |s: u64| t0 + Duration::from_secs(s);
        assert_eq!(meter.rates(t0, HashMap::new()), Rates::default());
        // Account 1 on server 10: 10 calls a second; account 2 on server 11: 2 a second.
        for s in 1..=8u64 {
            let counts = HashMap::from([((1, 10), 10 * s), ((2, 11), 2 * s)]);
            let rates = meter.rates(at(s), counts);
            let a1 = rates.by_account.get(&1).copied().unwrap_or(0.0);
            assert!((a1 - 10.0).abs() < 1e-9, "second {s}: {a1}");
            assert!((rates.by_server[&11] - 2.0).abs() < 1e-9);
        }
        // Account 2 stops: its rate falls to 0 over the window and it drops out.
        let mut last = Rates::default();
        for s in 9..=20u64 {
            last = meter.rates(at(s), HashMap::from([((1, 10), 10 * s), ((2, 11), 16)]));
        }
        assert_eq!(last.by_account.get(&2), None);
        assert!((last.by_server[&10] - 10.0).abs() < 1e-9);
    }
}
