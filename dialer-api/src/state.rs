//! What every request handler shares.

use std::sync::Arc;

use dialer_core::Config;
use dialer_core::db::DbPool;

use crate::broker::Broker;
use crate::rate_limit::KeyLimiters;

#[derive(Clone)]
pub struct AppState {
    pub config: Arc<Config>,
    pub pool: DbPool,
    pub broker: Arc<Broker>,
    pub limiters: Arc<KeyLimiters>,
}
