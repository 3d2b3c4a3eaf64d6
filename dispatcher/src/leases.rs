//! Server leases and heartbeats in PostgreSQL: each Asterisk server is dialed by exactly one
//! dispatcher, the holder of its unexpired lease. Leases are renewed well within their time to
//! live; a dispatcher that dies stops renewing, and another takes its servers once they lapse.

use std::time::Duration;

use diesel::QueryableByName;
use diesel::sql_types::{BigInt, Double, Text};
use diesel_async::{AsyncPgConnection, RunQueryDsl};

use crate::server::ServerSpec;
use dialer_core::prepared::PrepareOnce;

/// The servers held after a renewal, and how many this dispatcher should hold: its share of
/// the enabled servers among the live dispatchers (rounded up), so load spreads out as
/// dispatchers join and a dead one's servers are taken by the others.
#[derive(Debug, Clone)]
pub struct Holding {
    pub servers: Vec<ServerSpec>,
    pub quota: usize,
}

#[derive(QueryableByName)]
struct Quota {
    #[diesel(sql_type = BigInt)]
    live: i64,
    #[diesel(sql_type = BigInt)]
    servers: i64,
}

/// Heartbeats, renews this dispatcher's leases, and takes free or lapsed servers up to its share.
pub async fn renew(
    conn: &mut AsyncPgConnection,
    me: &str,
    ttl: Duration,
) -> Result<Holding, diesel::result::Error> {
    diesel::sql_query(
        "INSERT INTO dispatchers (id, hostname) VALUES ($1, '') \
         ON CONFLICT (id) DO UPDATE SET heartbeat_at = now()",
    )
    .bind::<Text, _>(me)
    .prepared()
    .execute(conn)
    .await?;
    // A server disabled by an operator is let go.
    diesel::sql_query(
        "DELETE FROM server_leases l USING asterisk_servers s \
         WHERE l.server_id = s.id AND l.holder = $1 AND NOT s.enabled",
    )
    .bind::<Text, _>(me)
    .prepared()
    .execute(conn)
    .await?;
    let q: Quota = diesel::sql_query(
        "SELECT (SELECT count(*) FROM dispatchers \
                 WHERE heartbeat_at > now() - make_interval(secs => $1)) AS live, \
                (SELECT count(*) FROM asterisk_servers WHERE enabled) AS servers",
    )
    .bind::<Double, _>(ttl.as_secs_f64())
    .prepared()
    .get_result(conn)
    .await?;
    let live = q.live.max(1) as usize;
    let quota = (q.servers.max(0) as usize).div_ceil(live);
    diesel::sql_query(
        "UPDATE server_leases SET expires_at = now() + make_interval(secs => $2) WHERE holder = $1",
    )
    .bind::<Text, _>(me)
    .bind::<Double, _>(ttl.as_secs_f64())
    .prepared()
    .execute(conn)
    .await?;
    diesel::sql_query(
        "WITH held AS (SELECT count(*) AS n FROM server_leases WHERE holder = $1), \
         cand AS (SELECT s.id FROM asterisk_servers s LEFT JOIN server_leases l ON l.server_id = s.id \
                  WHERE s.enabled AND (l.server_id IS NULL OR l.expires_at < now()) \
                  ORDER BY s.id LIMIT GREATEST($3 - (SELECT n FROM held), 0)) \
         INSERT INTO server_leases (server_id, holder, expires_at) \
         SELECT id, $1, now() + make_interval(secs => $2) FROM cand \
         ON CONFLICT (server_id) DO UPDATE \
           SET holder = $1, expires_at = EXCLUDED.expires_at, acquired_at = now() \
           WHERE server_leases.expires_at < now()",
    )
    .bind::<Text, _>(me)
    .bind::<Double, _>(ttl.as_secs_f64())
    .bind::<BigInt, _>(quota as i64)
    .prepared()
    .execute(conn)
    .await?;
    let servers: Vec<ServerSpec> = diesel::sql_query(
        "SELECT s.* FROM asterisk_servers s JOIN server_leases l ON l.server_id = s.id \
         WHERE l.holder = $1 ORDER BY s.id",
    )
    .bind::<Text, _>(me)
    .prepared()
    .load(conn)
    .await?;
    Ok(Holding { servers, quota })
}

/// Hands one server back once it has no call left (a drained server), so the dispatcher that
/// takes it finds nothing to reconcile.
pub async fn release(
    conn: &mut AsyncPgConnection,
    me: &str,
    server_id: i64,
) -> Result<(), diesel::result::Error> {
    diesel::sql_query("DELETE FROM server_leases WHERE holder = $1 AND server_id = $2")
        .bind::<Text, _>(me)
        .bind::<BigInt, _>(server_id)
        .prepared()
        .execute(conn)
        .await?;
    Ok(())
}

/// Gives every lease back (clean shutdown), so another dispatcher need not wait for them to
/// lapse.
pub async fn release_all(
    conn: &mut AsyncPgConnection,
    me: &str,
) -> Result<(), diesel::result::Error> {
    diesel::sql_query("DELETE FROM server_leases WHERE holder = $1")
        .bind::<Text, _>(me)
        .prepared()
        .execute(conn)
        .await?;
    diesel::sql_query("DELETE FROM dispatchers WHERE id = $1")
        .bind::<Text, _>(me)
        .prepared()
        .execute(conn)
        .await?;
    Ok(())
}
