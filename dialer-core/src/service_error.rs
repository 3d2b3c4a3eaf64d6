//! The error of work that needs both PostgreSQL and RabbitMQ (the outboxes, the callback
//! worker): which of the two failed.

use crate::db::{DbError, PoolError};
use crate::topology::BrokerError;

#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    #[error(transparent)]
    Db(#[from] DbError),
    #[error(transparent)]
    Broker(#[from] BrokerError),
}

impl From<diesel::result::Error> for ServiceError {
    fn from(e: diesel::result::Error) -> Self {
        ServiceError::Db(DbError::Query(e))
    }
}

impl From<PoolError> for ServiceError {
    fn from(e: PoolError) -> Self {
        ServiceError::Db(DbError::from(e))
    }
}

impl From<lapin::Error> for ServiceError {
    fn from(e: lapin::Error) -> Self {
        ServiceError::Broker(BrokerError::Amqp(e))
    }
}
