//! When each API key was last used (`api_keys.last_used_at`, shown by `GET /account/keys`), at
//! most once a minute per key and process: a write per request would cost more than the request.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use diesel::sql_types::BigInt;
use diesel_async::RunQueryDsl;

use dialer_core::db::DbPool;

/// A key's use is written again only this long after the last write.
pub const EVERY: Duration = Duration::from_secs(60);
/// Entries kept before old ones are swept out.
const SWEEP_ABOVE: usize = 10_000;

#[derive(Default)]
pub struct KeyUse {
    written: Mutex<HashMap<i64, Instant>>,
}

impl KeyUse {
    /// Whether key `key_id`'s use is due to be written now (and notes it as written).
    pub fn due(&self, key_id: i64, now: Instant) -> bool {
        let Ok(mut written) = self.written.lock() else {
            return false;
        };
        if written.len() > SWEEP_ABOVE {
            written.retain(|_, at| now.duration_since(*at) < EVERY);
        }
        match written.get(&key_id) {
            Some(at) if now.duration_since(*at) < EVERY => false,
            _ => {
                written.insert(key_id, now);
                true
            }
        }
    }

    /// Writes the use of key `key_id` in the background when due; a failure is only logged
    /// (the request does not wait for it, nor fail with it).
    pub fn note(&self, pool: &DbPool, key_id: i64) {
        if !self.due(key_id, Instant::now()) {
            return;
        }
        let pool = pool.clone();
        actix_web::rt::spawn(async move {
            let written = async {
                let mut conn = pool.get().await.map_err(|e| e.to_string())?;
                diesel::sql_query("UPDATE api_keys SET last_used_at = now() WHERE id = $1")
                    .bind::<BigInt, _>(key_id)
                    .execute(&mut conn)
                    .await
                    .map_err(|e| e.to_string())
            }
            .await;
            if let Err(e) = written {
                tracing::warn!(key_id, error = %e, "API key use not written");
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_s_use_is_written_at_most_once_a_minute() {
        let uses = KeyUse::default();
        let t0 = Instant::now();
        assert!(uses.due(1, t0));
        assert!(!uses.due(1, t0 + Duration::from_secs(59)));
        assert!(uses.due(2, t0 + Duration::from_secs(1)));
        assert!(uses.due(1, t0 + EVERY));
    }
}
