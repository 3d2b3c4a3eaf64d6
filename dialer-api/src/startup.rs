//! Building and running the API server (`Application::build` binds, possibly port 0, and
//! reports the port, so tests start the real application).

use std::net::TcpListener;
use std::sync::Arc;

use actix_web::dev::Server;
use actix_web::middleware::from_fn;
use actix_web::{App, HttpServer, web};

use dialer_core::Config;
use dialer_core::db::{self, DbError};
use dialer_core::media_url::MediaUrls;
use dialer_core::migrations::{self, SchemaError};
use dialer_core::topology::Topology;

use crate::account_slots::AccountSlots;
use crate::auth_failures::AuthFailures;
use crate::body_timeout::{BodyTimeouts, body_timeout};
use crate::broker::Broker;
use crate::error_json::{json_errors, unknown_route};
use crate::recording_store::RecordingStore;
use crate::speech::EspeakNg;
use crate::state::AppState;

#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    #[error(transparent)]
    Db(#[from] DbError),
    #[error(transparent)]
    Schema(#[from] SchemaError),
    #[error("the media key: {0}")]
    MediaKey(#[from] diesel::result::Error),
    #[error(transparent)]
    Recordings(#[from] crate::recording_store::StoreError),
    #[error(transparent)]
    Config(#[from] dialer_core::config::ConfigError),
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: std::net::SocketAddr,
        source: std::io::Error,
    },
}

pub struct Application {
    port: u16,
    server: Server,
    state: AppState,
}

impl Application {
    pub async fn build(mut config: Config) -> Result<Application, StartupError> {
        let pool = db::build_pool(&config, "dialer-api")?;
        {
            let mut conn = pool.get().await.map_err(DbError::from)?;
            migrations::check_schema(&mut conn).await?;
        }
        let broker = Arc::new(Broker::new(
            config.amqp_url.clone(),
            Topology::new(&config.queue_prefix),
        ));
        if let Err(e) = broker.channel().await {
            // Not fatal: dispatched calls wait in the outbox until the broker is back.
            tracing::warn!(error = %e, "RabbitMQ not reachable at start");
        }
        let listener = TcpListener::bind(config.api_addr).map_err(|source| StartupError::Bind {
            addr: config.api_addr,
            source,
        })?;
        let addr = config.api_addr;
        let port = listener
            .local_addr()
            .map_err(|source| StartupError::Bind { addr, source })?
            .port();
        // Addresses left to their default name the bound port (port 0 in tests).
        for url in [&mut config.public_url, &mut config.media_url] {
            if let Some(base) = url.strip_suffix(":0") {
                *url = format!("{base}:{port}");
            }
        }
        let media = {
            let mut conn = pool.get().await.map_err(DbError::from)?;
            MediaUrls::load(&mut conn, &config.media_url).await?
        };
        let workers = match config.api_workers {
            0 => std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(2),
            n => n,
        };
        let limits = config.api_limits.clone();
        let auth_pool = {
            let mut auth = config.clone();
            auth.db_pool_size = limits.auth_pool_size;
            db::build_pool(&auth, "dialer-api-auth")?
        };
        let recordings = RecordingStore::open(&config.recordings_store)?;
        let state = AppState {
            slots: Arc::new(AccountSlots::new(
                limits.account_share(config.db_pool_size),
                limits.account_submissions,
                limits.account_wait,
            )),
            auth_failures: Arc::new(AuthFailures::new(
                limits.auth_max_failures,
                limits.auth_failure_window,
            )),
            key_use: Arc::default(),
            config: Arc::new(config),
            pool,
            auth_pool,
            broker,
            limiters: Arc::default(),
            media,
            speech: Arc::new(EspeakNg::default()),
            recordings,
            console: Arc::new(crate::console::Console::from_env()?),
        };
        crate::metrics::handle();
        let data = web::Data::new(state.clone());
        let max_body = state.config.max_body_bytes;
        let body_timeouts = web::Data::new(BodyTimeouts {
            idle: limits.body_idle_timeout,
            total: limits.body_timeout,
        });
        let server = HttpServer::new(move || {
            App::new()
                .app_data(data.clone())
                .app_data(body_timeouts.clone())
                .app_data(web::PayloadConfig::new(max_body))
                .wrap(from_fn(body_timeout))
                .wrap(from_fn(json_errors))
                .wrap(from_fn(crate::metrics::track))
                .wrap(from_fn(crate::request_log::request_log))
                .configure(crate::routes::configure)
                .configure(crate::console::configure)
                .default_service(web::to(unknown_route))
        })
        .workers(workers)
        .client_request_timeout(limits.head_timeout)
        .listen(listener)
        .map_err(|source| StartupError::Bind { addr, source })?
        .run();
        Ok(Application {
            port,
            server,
            state,
        })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// Serves until the server stops (SIGINT/SIGTERM), sweeping the outboxes meanwhile.
    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        let sweeper = tokio::spawn(crate::outbox_sweeper::run(self.state.clone()));
        let console = tokio::spawn(crate::console::close_on_signal(
            self.state.console.hub.clone(),
        ));
        let result = self.server.await;
        sweeper.abort();
        console.abort();
        self.state.broker.close().await;
        result
    }
}
