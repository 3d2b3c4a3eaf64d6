//! API keys and callback secrets: generation from the OS's random source, and the hash under
//! which an API key is stored and looked up.

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use sha2::{Digest, Sha256};

#[derive(Debug, thiserror::Error)]
#[error("the operating system's random source failed: {0}")]
pub struct RandomError(String);

fn random_bytes<const N: usize>() -> Result<[u8; N], RandomError> {
    let mut buf = [0u8; N];
    getrandom::fill(&mut buf).map_err(|e| RandomError(e.to_string()))?;
    Ok(buf)
}

/// A freshly generated API key: the key (shown once) and what is stored.
pub struct NewApiKey {
    pub key: String,
    pub hash: [u8; 32],
    pub prefix: String,
}

/// `dk_` + 43 URL-safe characters (256 random bits).
pub fn generate_api_key() -> Result<NewApiKey, RandomError> {
    key_with_prefix("dk_")
}

/// A test-mode key: `dk_test_` + 43 URL-safe characters, so a person can tell it at a glance.
pub fn generate_test_api_key() -> Result<NewApiKey, RandomError> {
    key_with_prefix("dk_test_")
}

fn key_with_prefix(prefix: &str) -> Result<NewApiKey, RandomError> {
    let key = format!("{prefix}{}", URL_SAFE_NO_PAD.encode(random_bytes::<32>()?));
    Ok(NewApiKey {
        hash: hash_api_key(&key),
        prefix: key.chars().take(10).collect(),
        key,
    })
}

/// SHA-256 of the key. A fast hash is right here: keys carry 256 random bits, so there is
/// nothing to brute-force, and every request looks one up.
pub fn hash_api_key(key: &str) -> [u8; 32] {
    Sha256::digest(key.as_bytes()).into()
}

/// `whsec_<base64 of 32 random bytes>`, the Standard Webhooks secret form of the contract.
pub fn generate_callback_secret() -> Result<String, RandomError> {
    Ok(format!("whsec_{}", STANDARD.encode(random_bytes::<32>()?)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_random_and_hashed() {
        let a = generate_api_key().expect("random");
        let b = generate_api_key().expect("random");
        assert_ne!(a.key, b.key);
        assert_eq!(a.key.len(), 3 + 43);
        assert_eq!(a.hash, hash_api_key(&a.key));
        assert!(a.key.starts_with(&a.prefix));
    }

    #[test]
    fn callback_secret_decodes_to_32_bytes() {
        let s = generate_callback_secret().expect("random");
        let raw = s.strip_prefix("whsec_").expect("prefix");
        assert_eq!(STANDARD.decode(raw).map(|b| b.len()).ok(), Some(32));
    }
}
