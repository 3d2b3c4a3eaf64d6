//! Each held server's live state in PostgreSQL (`server_status`), written every second by its
//! holder: connected or not, handed over, the overload back-off, calls on it. Only the holder
//! knows its AMI session; the API reads these rows for `waiting_reason` and the operators' views.

use diesel::sql_types::{Array, BigInt, Bool, Double, Integer, Text};
use diesel_async::{AsyncPgConnection, RunQueryDsl};

use dialer_core::prepared::PrepareOnce;

/// How often the holder writes.
pub const EVERY: std::time::Duration = std::time::Duration::from_secs(1);

/// One held server, now.
#[derive(Debug, Clone, PartialEq)]
pub struct Report {
    pub server_id: i64,
    pub connected: bool,
    pub draining: bool,
    pub capacity_factor: f64,
    pub live_calls: i32,
}

/// Writes the reports of the servers `holder` holds, in one statement.
pub async fn publish(
    conn: &mut AsyncPgConnection,
    holder: &str,
    reports: &[Report],
) -> diesel::QueryResult<()> {
    if reports.is_empty() {
        return Ok(());
    }
    let ids: Vec<i64> = reports.iter().map(|r| r.server_id).collect();
    let connected: Vec<bool> = reports.iter().map(|r| r.connected).collect();
    let draining: Vec<bool> = reports.iter().map(|r| r.draining).collect();
    let factors: Vec<f64> = reports.iter().map(|r| r.capacity_factor).collect();
    let live: Vec<i32> = reports.iter().map(|r| r.live_calls).collect();
    diesel::sql_query(
        "INSERT INTO server_status (server_id, holder, connected, draining, capacity_factor, live_calls, reported_at) \
         SELECT s, $2, c, d, f, l, now() FROM unnest($1::bigint[], $3::bool[], $4::bool[], $5::float8[], $6::int[]) AS u(s, c, d, f, l) \
         WHERE EXISTS (SELECT 1 FROM asterisk_servers a WHERE a.id = u.s) \
         ON CONFLICT (server_id) DO UPDATE SET holder = EXCLUDED.holder, connected = EXCLUDED.connected, \
             draining = EXCLUDED.draining, capacity_factor = EXCLUDED.capacity_factor, \
             live_calls = EXCLUDED.live_calls, reported_at = EXCLUDED.reported_at",
    )
    .bind::<Array<BigInt>, _>(&ids)
    .bind::<Text, _>(holder)
    .bind::<Array<Bool>, _>(&connected)
    .bind::<Array<Bool>, _>(&draining)
    .bind::<Array<Double>, _>(&factors)
    .bind::<Array<Integer>, _>(&live)
    .prepared()
    .execute(conn)
    .await?;
    Ok(())
}
