//! What the console's handlers share: how long a session lasts, the throttle of failed
//! sign-ins, and the live snapshot every page of this process watches.

use std::sync::Arc;
use std::time::Duration;

use dialer_core::config::{ConfigError, Env};

use crate::auth_failures::AuthFailures;
use crate::console::hub::Hub;

/// Failed sign-ins from one address within [`SIGN_IN_WINDOW`] before that address must wait
/// for the window to end. Fewer than the API keys' limit: a person types a token, a program
/// does not sign in at all.
pub const SIGN_IN_MAX_FAILURES: u32 = 10;
pub const SIGN_IN_WINDOW: Duration = Duration::from_secs(300);

pub struct Console {
    /// `DIALER_CONSOLE_SESSION_HOURS` (default 12).
    pub session_ttl: Duration,
    pub sign_in_failures: AuthFailures,
    pub hub: Arc<Hub>,
}

impl Console {
    /// From the process's environment.
    pub fn from_env() -> Result<Console, ConfigError> {
        Console::read(&Env::process())
    }

    pub fn read<F: Fn(&str) -> Option<String>>(env: &Env<F>) -> Result<Console, ConfigError> {
        let hours: u64 = env.positive("DIALER_CONSOLE_SESSION_HOURS", 12)?;
        // A year at most: longer is a mistake, and the product must not overflow.
        Ok(Console::new(Duration::from_secs(hours.min(8760) * 3600)))
    }

    pub fn new(session_ttl: Duration) -> Console {
        Console {
            session_ttl,
            sign_in_failures: AuthFailures::new(SIGN_IN_MAX_FAILURES, SIGN_IN_WINDOW),
            hub: Arc::new(Hub::default()),
        }
    }
}
