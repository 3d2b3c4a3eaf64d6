//! For integration tests: a throwaway migrated database and a private RabbitMQ name prefix per
//! test, so tests run in parallel against the real services and clean up after themselves
//! (also when they panic).

use diesel_async::{AsyncConnection, AsyncPgConnection, SimpleAsyncConnection};

use crate::config::Config;
use crate::topology::{self, Topology};

/// A test's own database and queue prefix; dropped at the end of the test.
pub struct TestEnv {
    pub config: Config,
    db_name: String,
    admin_url: String,
    /// The broker to clean up, as it was before a test changed `config.amqp_url`.
    cleanup_amqp_url: String,
    cleanup_topology: Topology,
}

impl TestEnv {
    /// Creates `dialer_test_<uuid>` (migrated) beside the database of `DATABASE_URL` and a
    /// unique queue prefix; everything else from the environment's defaults.
    pub async fn new() -> TestEnv {
        let base = Config::from_env().expect("test config from environment");
        let id = uuid::Uuid::new_v4().simple().to_string();
        let db_name = format!("dialer_test_{id}");
        let (server, query) = crate::db::split_database_url(&base.database_url);
        let (server, query) = (server.to_owned(), query.to_owned());
        let admin_url = format!("{server}postgres{query}");
        let mut admin = AsyncPgConnection::establish(&admin_url)
            .await
            .expect("connect to the `postgres` database (is PostgreSQL running?)");
        admin
            .batch_execute(&format!("CREATE DATABASE {db_name}"))
            .await
            .expect("create the test database");
        let mut config = base;
        config.database_url = format!("{server}{db_name}{query}");
        config.queue_prefix = format!("t{}", &id[..16]);
        config.api_addr = "127.0.0.1:0".parse().expect("loopback address");
        // The API's own address once it is bound (it replaces port 0 with its port).
        config.public_url = "http://127.0.0.1:0".to_owned();
        config.media_url = config.public_url.clone();
        config.recordings_store = std::env::temp_dir()
            .join(format!("dialer-test-recordings-{id}"))
            .display()
            .to_string();
        config.db_pool_size = 4;
        config.api_workers = 1;
        let env = TestEnv {
            cleanup_amqp_url: config.amqp_url.clone(),
            cleanup_topology: Topology::new(&config.queue_prefix),
            config,
            db_name,
            admin_url,
        };
        crate::migrations::run_pending(&env.config.database_url)
            .await
            .expect("migrate the test database");
        env
    }

    pub fn topology(&self) -> Topology {
        Topology::new(&self.config.queue_prefix)
    }
}

impl Drop for TestEnv {
    fn drop(&mut self) {
        // Drop cannot await; do the cleanup on a thread with its own runtime and wait for it.
        let admin_url = self.admin_url.clone();
        let db_name = self.db_name.clone();
        let amqp_url = self.cleanup_amqp_url.clone();
        let topology = self.cleanup_topology.clone();
        let test_url = self.config.database_url.clone();
        let cleanup = std::thread::spawn(move || {
            let Ok(rt) = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            else {
                return;
            };
            rt.block_on(async move {
                // The accounts' dial queues are named by id: read the ids before the database goes.
                let account_ids: Vec<i64> = match AsyncPgConnection::establish(&test_url).await {
                    Ok(mut conn) => {
                        use diesel_async::RunQueryDsl;
                        #[derive(diesel::QueryableByName)]
                        struct Id {
                            #[diesel(sql_type = diesel::sql_types::BigInt)]
                            id: i64,
                        }
                        diesel::sql_query("SELECT id FROM accounts")
                            .load::<Id>(&mut conn)
                            .await
                            .map(|rows| rows.into_iter().map(|r| r.id).collect())
                            .unwrap_or_default()
                    }
                    Err(_) => Vec::new(),
                };
                if let Ok(mut admin) = AsyncPgConnection::establish(&admin_url).await {
                    let _ = admin
                        .batch_execute(&format!("DROP DATABASE IF EXISTS {db_name} WITH (FORCE)"))
                        .await;
                }
                let connect = topology::connect_once(&amqp_url, "test-cleanup");
                let timeout = std::time::Duration::from_secs(5);
                if let Ok(Ok(conn)) = tokio::time::timeout(timeout, connect).await {
                    if let Ok(channel) = conn.create_channel().await {
                        let _ = topology.delete_account_queues(&channel, &account_ids).await;
                        let _ = topology.delete(&channel).await;
                    }
                    let _ = conn.close(200, "cleanup".into()).await;
                }
            });
        });
        let _ = cleanup.join();
    }
}
