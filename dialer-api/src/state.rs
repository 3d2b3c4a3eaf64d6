//! What every request handler shares.

use std::sync::Arc;

use dialer_core::Config;
use dialer_core::db::DbPool;
use dialer_core::media_url::MediaUrls;

use crate::account_slots::AccountSlots;
use crate::auth_failures::AuthFailures;
use crate::broker::Broker;
use crate::rate_limit::KeyLimiters;
use crate::recording_store::RecordingStore;
use crate::speech::SpeechEngine;

#[derive(Clone)]
pub struct AppState {
    pub config: Arc<Config>,
    /// The accounts' work.
    pub pool: DbPool,
    /// API key lookups only, so that authentication never waits behind the accounts' work.
    pub auth_pool: DbPool,
    pub broker: Arc<Broker>,
    pub limiters: Arc<KeyLimiters>,
    pub slots: Arc<AccountSlots>,
    pub auth_failures: Arc<AuthFailures>,
    /// When each key was last used, written at most once a minute.
    pub key_use: Arc<crate::key_use::KeyUse>,
    /// Signs and checks the media URLs the PBXs use (prompts, recording uploads).
    pub media: MediaUrls,
    /// Speaks text prompts.
    pub speech: Arc<dyn SpeechEngine>,
    /// Where recordings are kept.
    pub recordings: RecordingStore,
    /// The operator console's sessions, sign-in throttle and live snapshot.
    pub console: Arc<crate::console::Console>,
}
