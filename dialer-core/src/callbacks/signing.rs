//! The contract's two signatures over the exact body bytes: `X-Signature` (hex HMAC-SHA256 keyed
//! with the secret's UTF-8 bytes) and Standard Webhooks (`webhook-id`, `webhook-timestamp`,
//! `webhook-signature`, keyed with the base64 part after `whsec_`). Signed afresh per attempt.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use chrono::{DateTime, Utc};
use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SecretError {
    #[error("a callback secret must start with `whsec_`")]
    MissingPrefix,
    #[error("the part of a callback secret after `whsec_` is not valid base64")]
    NotBase64,
    #[error("the part of a callback secret after `whsec_` is empty")]
    Empty,
}

/// A parsed callback secret. Its `Debug` never shows the key.
#[derive(Clone)]
pub struct CallbackSecret {
    text: String,
    webhook_key: Vec<u8>,
}

impl std::fmt::Debug for CallbackSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("CallbackSecret(***)")
    }
}

impl CallbackSecret {
    pub fn parse(text: &str) -> Result<CallbackSecret, SecretError> {
        let encoded = text
            .strip_prefix("whsec_")
            .ok_or(SecretError::MissingPrefix)?;
        let webhook_key = STANDARD
            .decode(encoded)
            .map_err(|_| SecretError::NotBase64)?;
        if webhook_key.is_empty() {
            return Err(SecretError::Empty);
        }
        Ok(CallbackSecret {
            text: text.to_owned(),
            webhook_key,
        })
    }

    /// Lowercase hex HMAC-SHA256 of `body`, keyed with the whole secret text (`X-Signature`).
    pub fn x_signature(&self, body: &[u8]) -> String {
        let mut mac = mac(self.text.as_bytes());
        mac.update(body);
        to_hex(&mac.finalize().into_bytes())
    }

    /// `v1,<base64>` over `{id}.{timestamp}.{body}` (one entry of `webhook-signature`).
    pub fn webhook_signature(&self, id: &str, timestamp: i64, body: &[u8]) -> String {
        let mut mac = mac(&self.webhook_key);
        mac.update(id.as_bytes());
        mac.update(b".");
        mac.update(timestamp.to_string().as_bytes());
        mac.update(b".");
        mac.update(body);
        format!("v1,{}", STANDARD.encode(mac.finalize().into_bytes()))
    }
}

fn mac(key: &[u8]) -> HmacSha256 {
    // HMAC takes keys of any length; the error case cannot happen for HMAC.
    match <HmacSha256 as KeyInit>::new_from_slice(key) {
        Ok(mac) => mac,
        Err(_) => unreachable!("HMAC accepts keys of every length"),
    }
}

fn to_hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        out.push(DIGITS[(b >> 4) as usize] as char);
        out.push(DIGITS[(b & 0x0f) as usize] as char);
    }
    out
}

/// An account's signing keys at one instant: the current secret, and the previous one while
/// its rotation grace period lasts.
#[derive(Debug, Clone)]
pub struct SigningKeys {
    pub current: CallbackSecret,
    /// The previous secret and the end of its grace period.
    pub previous: Option<(CallbackSecret, DateTime<Utc>)>,
}

/// The signature headers of one attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignatureHeaders {
    pub x_signature: String,
    pub webhook_id: String,
    pub webhook_timestamp: String,
    pub webhook_signature: String,
}

impl SigningKeys {
    /// An account's keys from its stored secrets: the current one, and the previous one with the
    /// end of its grace period (both or neither). The message names which secret is bad.
    pub fn from_texts(
        current: &str,
        previous: Option<&str>,
        previous_until: Option<DateTime<Utc>>,
    ) -> Result<SigningKeys, String> {
        let current = CallbackSecret::parse(current).map_err(|e| e.to_string())?;
        let previous = match (previous, previous_until) {
            (Some(text), Some(until)) => Some((
                CallbackSecret::parse(text).map_err(|e| format!("previous secret: {e}"))?,
                until,
            )),
            _ => None,
        };
        Ok(SigningKeys { current, previous })
    }

    /// Signs `body` for an attempt at `now`. During a grace period `webhook-signature` carries
    /// the new and the old signature and `X-Signature` stays on the old secret, so a client
    /// that knows only one of them keeps verifying until it switches.
    pub fn sign(&self, event_id: &str, body: &[u8], now: DateTime<Utc>) -> SignatureHeaders {
        let ts = now.timestamp();
        let mut webhook_signature = self.current.webhook_signature(event_id, ts, body);
        let x_signature = match &self.previous {
            Some((old, until)) if now < *until => {
                webhook_signature.push(' ');
                webhook_signature.push_str(&old.webhook_signature(event_id, ts, body));
                old.x_signature(body)
            }
            _ => self.current.x_signature(body),
        };
        SignatureHeaders {
            x_signature,
            webhook_id: event_id.to_owned(),
            webhook_timestamp: ts.to_string(),
            webhook_signature,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    // The Standard Webhooks specification's published example.
    const SPEC_SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
    const SPEC_ID: &str = "msg_p5jXN8AQM9LWM0D4loKWxJek";
    const SPEC_TS: i64 = 1614265330;
    const SPEC_BODY: &[u8] = br#"{"test": 2432232314}"#;
    const SPEC_SIG: &str = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=";

    #[test]
    fn webhook_signature_matches_the_specification_example() {
        let secret = CallbackSecret::parse(SPEC_SECRET).expect("valid secret");
        assert_eq!(
            secret.webhook_signature(SPEC_ID, SPEC_TS, SPEC_BODY),
            SPEC_SIG
        );
    }

    #[test]
    fn x_signature_is_lowercase_hex_of_the_whole_secret() {
        // RFC 4231 test case 2: key "Jefe".
        let secret = CallbackSecret {
            text: "Jefe".into(),
            webhook_key: vec![1],
        };
        assert_eq!(
            secret.x_signature(b"what do ya want for nothing?"),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }

    #[test]
    fn malformed_secrets_are_refused() {
        assert_eq!(
            CallbackSecret::parse("abc").err(),
            Some(SecretError::MissingPrefix)
        );
        assert_eq!(
            CallbackSecret::parse("whsec_!!").err(),
            Some(SecretError::NotBase64)
        );
        assert_eq!(
            CallbackSecret::parse("whsec_").err(),
            Some(SecretError::Empty)
        );
        assert_eq!(
            format!("{:?}", CallbackSecret::parse(SPEC_SECRET).ok()),
            "Some(CallbackSecret(***))"
        );
    }

    #[test]
    fn rotation_signs_with_both_until_the_grace_period_ends() {
        let new = CallbackSecret::parse("whsec_bmV3bmV3bmV3bmV3").expect("new");
        let old = CallbackSecret::parse(SPEC_SECRET).expect("old");
        let until = Utc.timestamp_opt(SPEC_TS + 10, 0).single().expect("time");
        let keys = SigningKeys {
            current: new.clone(),
            previous: Some((old.clone(), until)),
        };
        let during = Utc.timestamp_opt(SPEC_TS, 0).single().expect("time");
        let h = keys.sign(SPEC_ID, SPEC_BODY, during);
        let parts: Vec<&str> = h.webhook_signature.split(' ').collect();
        assert_eq!(parts.len(), 2);
        assert_eq!(parts[0], new.webhook_signature(SPEC_ID, SPEC_TS, SPEC_BODY));
        assert_eq!(parts[1], SPEC_SIG);
        assert_eq!(h.x_signature, old.x_signature(SPEC_BODY));
        assert_eq!(h.webhook_timestamp, SPEC_TS.to_string());

        let after = Utc.timestamp_opt(SPEC_TS + 10, 0).single().expect("time");
        let h = keys.sign(SPEC_ID, SPEC_BODY, after);
        assert!(!h.webhook_signature.contains(' '));
        assert_eq!(h.x_signature, new.x_signature(SPEC_BODY));
    }
}
