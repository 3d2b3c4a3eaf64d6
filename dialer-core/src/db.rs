//! The PostgreSQL connection pool every service uses.

use std::time::Duration;

use diesel::ConnectionError;
use diesel_async::pooled_connection::deadpool::{Object, Pool};
use diesel_async::pooled_connection::{
    AsyncDieselConnectionManager, ManagerConfig, RecyclingMethod,
};
use diesel_async::{AsyncConnection, AsyncPgConnection, SimpleAsyncConnection};
use futures_util::FutureExt;

use crate::config::Config;

/// `postgres://u@h:p/db?x` -> (`postgres://u@h:p/`, `?x`): the server part, to name another
/// database on it, and the parameters.
pub fn split_database_url(url: &str) -> (&str, &str) {
    let (base, query) = match url.find('?') {
        Some(q) => (&url[..q], &url[q..]),
        None => (url, ""),
    };
    let after_scheme = base.find("://").map(|i| i + 3).unwrap_or(0);
    match base[after_scheme..].rfind('/') {
        Some(slash) => (&base[..after_scheme + slash + 1], query),
        None => (base, query),
    }
}

/// What a connection does when PostgreSQL's host or the link to it goes away (packets dropped,
/// nothing refused): without these, a statement waits for an answer until the kernel gives up
/// on the socket, about 15 minutes, and every process of the platform with it. With them, a
/// connection attempt gives up after 5 s, a socket with unacknowledged data after 10 s, and an
/// idle or waiting one after 5 s of silence and 3 unanswered keepalives 2 s apart; the caller
/// sees a lost connection and acts on it (the API answers 503, the dispatcher's writer keeps
/// the transition and tries again). Only the parameters `DATABASE_URL` does not set itself.
pub const NETWORK_TIMEOUTS: [(&str, &str); 5] = [
    ("connect_timeout", "5"),
    ("tcp_user_timeout", "10"),
    ("keepalives_idle", "5"),
    ("keepalives_interval", "2"),
    ("keepalives_retries", "3"),
];

/// `url` with [`NETWORK_TIMEOUTS`] added where it does not set them (URL or `key=value` form).
pub fn with_network_timeouts(url: &str) -> String {
    let url_form = url.starts_with("postgres://") || url.starts_with("postgresql://");
    let (_, query) = split_database_url(url);
    let has = |key: &str| match url_form {
        true => query
            .trim_start_matches('?')
            .split('&')
            .any(|kv| kv.split('=').next() == Some(key)),
        false => url
            .split_whitespace()
            .any(|kv| kv.split('=').next() == Some(key)),
    };
    let mut out = url.to_owned();
    for (key, value) in NETWORK_TIMEOUTS {
        if has(key) {
            continue;
        }
        let sep = match (url_form, out.contains('?')) {
            (true, true) => "&",
            (true, false) => "?",
            (false, _) => " ",
        };
        out.push_str(&format!("{sep}{key}={value}"));
    }
    out
}

pub type DbPool = Pool<AsyncPgConnection>;
pub type DbConn = Object<AsyncPgConnection>;
pub use diesel_async::pooled_connection::deadpool::PoolError;

#[derive(Debug, thiserror::Error)]
pub enum DbError {
    #[error("database pool: {0}")]
    Pool(String),
    #[error("database: {0}")]
    Query(#[from] diesel::result::Error),
    #[error("database connection: {0}")]
    Connection(#[from] ConnectionError),
}

impl From<diesel_async::pooled_connection::deadpool::PoolError> for DbError {
    fn from(e: diesel_async::pooled_connection::deadpool::PoolError) -> Self {
        DbError::Pool(e.to_string())
    }
}

/// The database is up and refused this statement for what it holds (a constraint, a value it
/// cannot take), or the statement could not be built: trying it again as it is fails again.
/// Anything else (a connection closed or refused, a server shutting down, a timeout, a
/// serialization failure) may pass on a later try.
pub fn refused_for_its_data(e: &diesel::result::Error) -> bool {
    use diesel::result::{DatabaseErrorKind as K, Error as E};
    match e {
        E::DatabaseError(kind, _) => matches!(
            kind,
            K::UniqueViolation
                | K::ForeignKeyViolation
                | K::NotNullViolation
                | K::CheckViolation
                | K::RestrictViolation
                | K::ExclusionViolation
        ),
        E::QueryBuilderError(_) | E::DeserializationError(_) | E::SerializationError(_) => true,
        E::InvalidCString(_) | E::NotFound => true,
        _ => false,
    }
}

/// The connection to the database failed (closed, or the command could not be sent): the
/// database is unreachable or restarting, and the same request may pass shortly.
pub fn connection_lost(e: &diesel::result::Error) -> bool {
    use diesel::result::{DatabaseErrorKind as K, Error as E};
    matches!(
        e,
        E::DatabaseError(K::ClosedConnection | K::UnableToSendCommand, _)
            | E::BrokenTransactionManager
    )
}

/// Builds the pool; connections are opened lazily. Every connection gets the configured
/// `statement_timeout` and an `application_name` naming the service.
pub fn build_pool(config: &Config, application_name: &str) -> Result<DbPool, DbError> {
    let setup_sql = format!(
        "SET statement_timeout = {}; SET application_name = '{}'",
        config.db_statement_timeout.as_millis(),
        application_name.replace('\'', "")
    );
    let mut manager_config = ManagerConfig::<AsyncPgConnection>::default();
    // A connection back from the pool is checked for being closed (the server ended it, its
    // socket failed), not pinged: the `SELECT 1` of the default was 43 % of PostgreSQL's
    // transactions at 50 calls/s. What only a ping would catch (a socket silently dead) fails
    // the next statement instead, as a connection dying just after its ping does anyway: the
    // ping guaranteed nothing a caller could skip handling.
    manager_config.recycling_method = RecyclingMethod::Fast;
    manager_config.custom_setup = Box::new(move |url| {
        let setup_sql = setup_sql.clone();
        let url = url.to_owned();
        async move {
            let mut conn = AsyncPgConnection::establish(&url).await?;
            conn.batch_execute(&setup_sql)
                .await
                .map_err(|e| ConnectionError::BadConnection(e.to_string()))?;
            Ok(conn)
        }
        .boxed()
    });
    let manager = AsyncDieselConnectionManager::<AsyncPgConnection>::new_with_config(
        with_network_timeouts(&config.database_url),
        manager_config,
    );
    Pool::builder(manager)
        .max_size(config.db_pool_size)
        .wait_timeout(Some(Duration::from_secs(10)))
        .create_timeout(Some(Duration::from_secs(10)))
        .recycle_timeout(Some(Duration::from_secs(5)))
        // Timeouts need a runtime, or every get() fails with NoRuntimeSpecified.
        .runtime(deadpool::Runtime::Tokio1)
        .build()
        .map_err(|e| DbError::Pool(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::{connection_lost, refused_for_its_data, split_database_url, with_network_timeouts};
    use diesel::result::{DatabaseErrorKind as K, Error as E};

    fn db(kind: K) -> E {
        E::DatabaseError(kind, Box::new(String::from("from the server")))
    }

    #[test]
    fn a_refusal_for_the_data_is_told_from_trouble_with_the_database() {
        for kind in [
            K::UniqueViolation,
            K::ForeignKeyViolation,
            K::CheckViolation,
        ] {
            let e = db(kind);
            assert!(refused_for_its_data(&e) && !connection_lost(&e), "{e:?}");
        }
        for kind in [K::ClosedConnection, K::UnableToSendCommand] {
            let e = db(kind);
            assert!(!refused_for_its_data(&e) && connection_lost(&e), "{e:?}");
        }
        // A serialization failure, a timeout or a shutdown (Unknown) pass on a later try, but
        // are not a lost connection for the API.
        for e in [db(K::SerializationFailure), db(K::Unknown)] {
            assert!(!refused_for_its_data(&e) && !connection_lost(&e), "{e:?}");
        }
        assert!(refused_for_its_data(&E::NotFound));
    }

    #[test]
    fn network_timeouts_are_added_unless_the_url_sets_them() {
        assert_eq!(
            with_network_timeouts("postgres://u@h:5432/db"),
            "postgres://u@h:5432/db?connect_timeout=5&tcp_user_timeout=10&keepalives_idle=5\
             &keepalives_interval=2&keepalives_retries=3"
        );
        assert_eq!(
            with_network_timeouts(
                "postgresql://u@h1:5432,h2:5432/db?target_session_attrs=read-write&connect_timeout=2\
                 &tcp_user_timeout=30&keepalives_idle=1&keepalives_interval=1&keepalives_retries=1"
            ),
            "postgresql://u@h1:5432,h2:5432/db?target_session_attrs=read-write&connect_timeout=2\
             &tcp_user_timeout=30&keepalives_idle=1&keepalives_interval=1&keepalives_retries=1"
        );
        assert_eq!(
            with_network_timeouts("host=h dbname=db connect_timeout=1"),
            "host=h dbname=db connect_timeout=1 tcp_user_timeout=10 keepalives_idle=5 \
             keepalives_interval=2 keepalives_retries=3"
        );
    }

    #[test]
    fn splits_database_from_server() {
        assert_eq!(
            split_database_url("postgres://u@h:5432/dialer"),
            ("postgres://u@h:5432/", "")
        );
        assert_eq!(
            split_database_url("postgres://u@h/dialer?sslmode=disable"),
            ("postgres://u@h/", "?sslmode=disable")
        );
    }
}
