//! The URLs the PBXs use to reach the platform's media: a prompt to play, and the one place an
//! attempt's recording may be uploaded to. They are capabilities: signed with the platform's
//! media key (HMAC-SHA256), so the API serves them to whoever holds the URL and no one can
//! forge one for another prompt or attempt. The key lives in the database (`media_key`), made
//! on first use, so the API and every dispatcher share it without configuration.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Utc};
use diesel::sql_types::Bytea;
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;
use uuid::Uuid;

type HmacSha256 = Hmac<Sha256>;

/// Bytes of the HMAC kept in a URL: 128 bits, beyond guessing.
const TAG_BYTES: usize = 16;

/// Builds and checks media URLs with the platform's key.
#[derive(Clone)]
pub struct MediaUrls {
    /// Where the PBXs reach the API (`DIALER_MEDIA_URL`), without a trailing slash.
    base: String,
    key: Vec<u8>,
}

impl std::fmt::Debug for MediaUrls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the key.
        f.debug_struct("MediaUrls")
            .field("base", &self.base)
            .finish()
    }
}

#[derive(diesel::QueryableByName)]
struct KeyRow {
    #[diesel(sql_type = Bytea)]
    key: Vec<u8>,
}

impl MediaUrls {
    pub fn new(base: &str, key: Vec<u8>) -> MediaUrls {
        MediaUrls {
            base: base.trim_end_matches('/').to_owned(),
            key,
        }
    }

    /// With the platform's media key, made now if this is its first use (two processes making
    /// it at once agree on the first one stored).
    pub async fn load(
        conn: &mut AsyncPgConnection,
        base: &str,
    ) -> Result<MediaUrls, diesel::result::Error> {
        let mut fresh = [0u8; 32];
        getrandom::fill(&mut fresh).map_err(|e| {
            diesel::result::Error::QueryBuilderError(format!("no randomness: {e}").into())
        })?;
        diesel::sql_query(
            "INSERT INTO media_key (key) VALUES ($1) ON CONFLICT (singleton) DO NOTHING",
        )
        .bind::<Bytea, _>(fresh.as_slice())
        .execute(conn)
        .await?;
        let row: KeyRow = diesel::sql_query("SELECT key FROM media_key")
            .get_result(conn)
            .await?;
        Ok(MediaUrls::new(base, row.key))
    }

    fn tag(&self, message: &str) -> String {
        let mut mac = mac(&self.key);
        mac.update(message.as_bytes());
        URL_SAFE_NO_PAD.encode(&mac.finalize().into_bytes()[..TAG_BYTES])
    }

    fn verify(&self, message: &str, tag: &str) -> bool {
        let Ok(bytes) = URL_SAFE_NO_PAD.decode(tag) else {
            return false;
        };
        if bytes.len() != TAG_BYTES {
            return false;
        }
        let mut mac = mac(&self.key);
        mac.update(message.as_bytes());
        // Constant time.
        mac.verify_truncated_left(&bytes).is_ok()
    }

    /// A prompt's URL for `Playback` (the `.wav` ending tells Asterisk's media cache its format).
    pub fn prompt(&self, prompt_id: &str) -> String {
        let tag = self.tag(&format!("prompt:{prompt_id}"));
        format!("{}/media/v1/prompts/{prompt_id}/{tag}.wav", self.base)
    }

    pub fn verify_prompt(&self, prompt_id: &str, tag: &str) -> bool {
        self.verify(&format!("prompt:{prompt_id}"), tag)
    }

    /// Where the PBX uploads an attempt's recording (`PUT`), valid until `expires`; the API
    /// takes one upload per attempt.
    pub fn recording_upload(&self, call_id: Uuid, attempt: i32, expires: DateTime<Utc>) -> String {
        let exp = expires.timestamp();
        let tag = self.tag(&format!("recording:{call_id}:{attempt}:{exp}"));
        format!(
            "{}/media/v1/recordings/{call_id}/{attempt}/{exp}/{tag}",
            self.base
        )
    }

    pub fn verify_recording(&self, call_id: Uuid, attempt: i32, expires: i64, tag: &str) -> bool {
        self.verify(&format!("recording:{call_id}:{attempt}:{expires}"), tag)
    }
}

fn mac(key: &[u8]) -> HmacSha256 {
    match <HmacSha256 as KeyInit>::new_from_slice(key) {
        Ok(mac) => mac,
        Err(_) => unreachable!("HMAC accepts keys of every length"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_verify_only_for_what_they_were_made_for() {
        let m = MediaUrls::new("http://10.0.0.5:8080/", vec![7; 32]);
        let url = m.prompt("prm_abc");
        assert!(url.starts_with("http://10.0.0.5:8080/media/v1/prompts/prm_abc/"));
        assert!(url.ends_with(".wav"));
        let tag = url
            .rsplit('/')
            .next()
            .and_then(|t| t.strip_suffix(".wav"))
            .unwrap_or_default();
        assert!(m.verify_prompt("prm_abc", tag));
        assert!(!m.verify_prompt("prm_abd", tag));
        assert!(!m.verify_prompt("prm_abc", "AAAA"));
        let other = MediaUrls::new("http://10.0.0.5:8080", vec![8; 32]);
        assert!(!other.verify_prompt("prm_abc", tag));

        let call = Uuid::new_v4();
        let exp = Utc::now();
        let up = m.recording_upload(call, 2, exp);
        let tag = up.rsplit('/').next().unwrap_or_default();
        assert!(m.verify_recording(call, 2, exp.timestamp(), tag));
        assert!(!m.verify_recording(call, 1, exp.timestamp(), tag));
        assert!(!m.verify_recording(call, 2, exp.timestamp() + 1, tag));
    }
}
