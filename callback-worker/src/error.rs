//! The worker's error type.

use dialer_core::db::DbError;
use dialer_core::topology::BrokerError;

#[derive(Debug, thiserror::Error)]
pub enum WorkerError {
    #[error(transparent)]
    Db(#[from] DbError),
    #[error(transparent)]
    Broker(#[from] BrokerError),
}

impl From<diesel::result::Error> for WorkerError {
    fn from(e: diesel::result::Error) -> Self {
        WorkerError::Db(DbError::Query(e))
    }
}

impl From<dialer_core::db::PoolError> for WorkerError {
    fn from(e: dialer_core::db::PoolError) -> Self {
        WorkerError::Db(DbError::from(e))
    }
}

impl From<lapin::Error> for WorkerError {
    fn from(e: lapin::Error) -> Self {
        WorkerError::Broker(BrokerError::Amqp(e))
    }
}
