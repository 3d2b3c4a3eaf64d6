//! Server leases and heartbeats in PostgreSQL: each Asterisk server is dialed by exactly one
//! dispatcher, the holder of its unexpired lease. Leases are renewed well within their time to
//! live; a dispatcher that dies stops renewing, and another takes its servers once they lapse.

use std::time::Duration;

use diesel::QueryableByName;
use diesel::sql_types::{BigInt, Double, Integer, Text};
use diesel_async::{AsyncPgConnection, RunQueryDsl};

use crate::server::ServerSpec;

#[derive(QueryableByName)]
struct Row {
    #[diesel(sql_type = BigInt)]
    id: i64,
    #[diesel(sql_type = Text)]
    code: String,
    #[diesel(sql_type = Text)]
    host: String,
    #[diesel(sql_type = Integer)]
    port: i32,
    #[diesel(sql_type = Text)]
    username: String,
    #[diesel(sql_type = Text)]
    secret: String,
    #[diesel(sql_type = Integer)]
    max_channels: i32,
    #[diesel(sql_type = Integer)]
    max_cps: i32,
    #[diesel(sql_type = Text)]
    channel_template: String,
}

/// Heartbeats, then takes or renews the lease of every enabled server that is free, lapsed or
/// already ours. Returns the servers held now.
pub async fn renew(
    conn: &mut AsyncPgConnection,
    me: &str,
    ttl: Duration,
) -> Result<Vec<ServerSpec>, diesel::result::Error> {
    diesel::sql_query(
        "INSERT INTO dispatchers (id, hostname) VALUES ($1, '') \
         ON CONFLICT (id) DO UPDATE SET heartbeat_at = now()",
    )
    .bind::<Text, _>(me)
    .execute(conn)
    .await?;
    let rows: Vec<Row> = diesel::sql_query(
        "WITH taken AS ( \
           INSERT INTO server_leases (server_id, holder, expires_at) \
           SELECT id, $1, now() + make_interval(secs => $2) FROM asterisk_servers WHERE enabled \
           ON CONFLICT (server_id) DO UPDATE \
             SET holder = $1, expires_at = EXCLUDED.expires_at, \
                 acquired_at = CASE WHEN server_leases.holder = $1 \
                                    THEN server_leases.acquired_at ELSE now() END \
             WHERE server_leases.holder = $1 OR server_leases.expires_at < now() \
           RETURNING server_id) \
         SELECT s.id, s.code, s.host, s.port, s.username, s.secret, s.max_channels, s.max_cps, \
                s.channel_template \
         FROM asterisk_servers s JOIN taken ON taken.server_id = s.id ORDER BY s.id",
    )
    .bind::<Text, _>(me)
    .bind::<Double, _>(ttl.as_secs_f64())
    .load(conn)
    .await?;
    // A server disabled by an operator is let go.
    diesel::sql_query(
        "DELETE FROM server_leases l USING asterisk_servers s \
         WHERE l.server_id = s.id AND l.holder = $1 AND NOT s.enabled",
    )
    .bind::<Text, _>(me)
    .execute(conn)
    .await?;
    Ok(rows
        .into_iter()
        .map(|r| ServerSpec {
            id: r.id,
            code: r.code,
            host: r.host,
            port: r.port,
            username: r.username,
            secret: r.secret,
            max_channels: r.max_channels,
            max_cps: r.max_cps,
            channel_template: r.channel_template,
        })
        .collect())
}

/// Gives every lease back (clean shutdown), so another dispatcher need not wait for them to
/// lapse.
pub async fn release_all(
    conn: &mut AsyncPgConnection,
    me: &str,
) -> Result<(), diesel::result::Error> {
    diesel::sql_query("DELETE FROM server_leases WHERE holder = $1")
        .bind::<Text, _>(me)
        .execute(conn)
        .await?;
    diesel::sql_query("DELETE FROM dispatchers WHERE id = $1")
        .bind::<Text, _>(me)
        .execute(conn)
        .await?;
    Ok(())
}
