//! The schema migrations embedded in every binary, how they are applied (`dialerctl migrate`),
//! and the check every service runs at start so it never works on a schema it does not know.

use std::collections::BTreeSet;

use diesel::migration::MigrationSource;
use diesel::pg::Pg;
use diesel::sql_types::Text;
use diesel_async::AsyncPgConnection;
use diesel_async::async_connection_wrapper::AsyncConnectionWrapper;
use diesel_migrations::{EmbeddedMigrations, MigrationHarness, embed_migrations};

pub const MIGRATIONS: EmbeddedMigrations = embed_migrations!("../migrations");

/// Serialises concurrent `migrate` runs (two deploys at once).
const MIGRATE_LOCK_KEY: i64 = 0x6469_616c_6572; // "dialer"

#[derive(Debug, thiserror::Error)]
pub enum SchemaError {
    #[error("cannot connect to the database: {0}")]
    Connect(String),
    #[error("migration failed: {0}")]
    Migrate(String),
    #[error(
        "the database has no dialer schema yet (no applied migrations); run `dialerctl migrate` first"
    )]
    NotMigrated,
    #[error(
        "the database schema has migrations this binary does not know ({unknown}); it was migrated by a newer version: upgrade this binary"
    )]
    Newer { unknown: String },
    #[error(
        "the database schema is behind this binary (pending migrations: {pending}); run `dialerctl migrate`"
    )]
    Behind { pending: String },
    #[error("database: {0}")]
    Query(#[from] diesel::result::Error),
}

/// Versions of the migrations this binary embeds.
pub fn known_versions() -> Result<BTreeSet<String>, SchemaError> {
    let migrations = MigrationSource::<Pg>::migrations(&MIGRATIONS)
        .map_err(|e| SchemaError::Migrate(e.to_string()))?;
    Ok(migrations
        .iter()
        .map(|m| m.name().version().to_string())
        .collect())
}

/// Applies every pending migration and returns the versions applied. Runs the sync migration
/// harness on its own thread (it blocks on the async connection inside).
pub async fn run_pending(database_url: &str) -> Result<Vec<String>, SchemaError> {
    let url = database_url.to_owned();
    tokio::task::spawn_blocking(move || {
        use diesel::connection::{Connection, SimpleConnection};
        let mut conn = AsyncConnectionWrapper::<AsyncPgConnection>::establish(&url)
            .map_err(|e| SchemaError::Connect(e.to_string()))?;
        conn.batch_execute(&format!("SELECT pg_advisory_lock({MIGRATE_LOCK_KEY})"))?;
        let result = conn
            .run_pending_migrations(MIGRATIONS)
            .map(|applied| applied.iter().map(|v| v.to_string()).collect())
            .map_err(|e| SchemaError::Migrate(e.to_string()));
        // Dropped connections release the lock too; this just frees it early.
        let _ = conn.batch_execute(&format!("SELECT pg_advisory_unlock({MIGRATE_LOCK_KEY})"));
        result
    })
    .await
    .map_err(|e| SchemaError::Migrate(format!("migration task failed: {e}")))?
}

#[derive(diesel::QueryableByName)]
struct AppliedVersion {
    #[diesel(sql_type = Text)]
    version: String,
}

/// Refuses a database that is not exactly at this binary's schema.
pub async fn check_schema(conn: &mut AsyncPgConnection) -> Result<(), SchemaError> {
    use diesel_async::RunQueryDsl;

    #[derive(diesel::QueryableByName)]
    struct Exists {
        #[diesel(sql_type = diesel::sql_types::Bool)]
        exists: bool,
    }
    let table =
        diesel::sql_query("SELECT to_regclass('__diesel_schema_migrations') IS NOT NULL AS exists")
            .get_result::<Exists>(conn)
            .await?;
    if !table.exists {
        return Err(SchemaError::NotMigrated);
    }
    let applied: BTreeSet<String> =
        diesel::sql_query("SELECT version::text AS version FROM __diesel_schema_migrations")
            .load::<AppliedVersion>(conn)
            .await?
            .into_iter()
            .map(|v| v.version)
            .collect();
    compare(&known_versions()?, &applied)
}

fn compare(known: &BTreeSet<String>, applied: &BTreeSet<String>) -> Result<(), SchemaError> {
    if applied.is_empty() {
        return Err(SchemaError::NotMigrated);
    }
    let unknown: Vec<&str> = applied.difference(known).map(String::as_str).collect();
    if !unknown.is_empty() {
        return Err(SchemaError::Newer {
            unknown: unknown.join(", "),
        });
    }
    let pending: Vec<&str> = known.difference(applied).map(String::as_str).collect();
    if !pending.is_empty() {
        return Err(SchemaError::Behind {
            pending: pending.join(", "),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(v: &[&str]) -> BTreeSet<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn compare_explains_each_mismatch() {
        let known = set(&["1", "2"]);
        assert!(compare(&known, &set(&["1", "2"])).is_ok());
        assert!(matches!(
            compare(&known, &set(&[])),
            Err(SchemaError::NotMigrated)
        ));
        assert!(
            matches!(compare(&known, &set(&["1", "2", "3"])), Err(SchemaError::Newer { unknown }) if unknown == "3")
        );
        assert!(
            matches!(compare(&known, &set(&["1"])), Err(SchemaError::Behind { pending }) if pending == "2")
        );
    }

    #[test]
    fn migrations_are_embedded() {
        assert!(!known_versions().expect("embedded").is_empty());
    }
}
