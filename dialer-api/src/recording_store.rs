//! Where recordings are kept, behind `object_store`: a local directory by default, an
//! S3-compatible bucket by configuration (`DIALER_RECORDINGS_STORE`).

use std::sync::Arc;

use bytes::Bytes;
use object_store::aws::AmazonS3ConfigKey;
use object_store::local::LocalFileSystem;
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload};
use uuid::Uuid;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("recordings store `{spec}`: {reason}")]
    Config { spec: String, reason: String },
    #[error("recordings store: {0}")]
    Store(#[from] object_store::Error),
}

/// The variables an S3-compatible store is configured by.
const S3_VARIABLES: [&str; 7] = [
    "AWS_ENDPOINT",
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_REGION",
    "AWS_DEFAULT_REGION",
    "AWS_ALLOW_HTTP",
];

#[derive(Clone)]
pub struct RecordingStore {
    store: Arc<dyn ObjectStore>,
}

impl std::fmt::Debug for RecordingStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "RecordingStore({})", self.store)
    }
}

impl RecordingStore {
    /// `s3://bucket[/prefix]` (credentials and endpoint from the process's `AWS_*` variables),
    /// else a directory (`file:///path` or a plain path), made if missing.
    pub fn open(spec: &str) -> Result<RecordingStore, StoreError> {
        RecordingStore::open_with(spec, |k| std::env::var(k).ok())
    }

    /// As [`RecordingStore::open`], the `AWS_*` variables read through `lookup`.
    pub fn open_with(
        spec: &str,
        lookup: impl Fn(&str) -> Option<String>,
    ) -> Result<RecordingStore, StoreError> {
        let config = |reason: String| StoreError::Config {
            spec: spec.to_owned(),
            reason,
        };
        let store: Arc<dyn ObjectStore> = if spec.starts_with("s3://") {
            let url = url_prefix(spec);
            let mut builder = object_store::aws::AmazonS3Builder::new().with_url(spec);
            for key in S3_VARIABLES {
                if let Some(value) = lookup(key) {
                    builder = match key {
                        "AWS_ALLOW_HTTP" => builder.with_allow_http(value == "true"),
                        _ => match key.to_ascii_lowercase().parse::<AmazonS3ConfigKey>() {
                            Ok(k) => builder.with_config(k, value),
                            Err(_) => builder,
                        },
                    };
                }
            }
            let s3 = builder.build().map_err(|e| config(e.to_string()))?;
            match url {
                Some(prefix) => Arc::new(object_store::prefix::PrefixStore::new(s3, prefix)),
                None => Arc::new(s3),
            }
        } else {
            let dir = spec.strip_prefix("file://").unwrap_or(spec);
            std::fs::create_dir_all(dir).map_err(|e| config(e.to_string()))?;
            Arc::new(LocalFileSystem::new_with_prefix(dir).map_err(|e| config(e.to_string()))?)
        };
        Ok(RecordingStore { store })
    }

    /// The key of an attempt's recording: one per attempt, by account.
    pub fn key(account_id: i64, call_id: Uuid, attempt: i32) -> String {
        format!("recordings/{account_id}/{call_id}/{attempt}.wav")
    }

    pub async fn put(&self, key: &str, bytes: Bytes) -> Result<(), StoreError> {
        self.store
            .put(&Path::from(key), PutPayload::from_bytes(bytes))
            .await?;
        Ok(())
    }

    /// `None` when there is no such object.
    pub async fn get(&self, key: &str) -> Result<Option<Bytes>, StoreError> {
        match self.store.get(&Path::from(key)).await {
            Ok(r) => Ok(Some(r.bytes().await?)),
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    /// Deletes an object; one already gone is fine.
    pub async fn delete(&self, key: &str) -> Result<(), StoreError> {
        match self.store.delete(&Path::from(key)).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(e.into()),
        }
    }
}

/// The path part of `s3://bucket/prefix`, if any.
fn url_prefix(spec: &str) -> Option<String> {
    let rest = spec.strip_prefix("s3://")?;
    let (_, prefix) = rest.split_once('/')?;
    let prefix = prefix.trim_matches('/');
    (!prefix.is_empty()).then(|| prefix.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_directory_store_keeps_and_forgets() {
        let dir = std::env::temp_dir().join(format!("dialer-rec-{}", Uuid::new_v4()));
        let store = RecordingStore::open(&dir.to_string_lossy()).expect("open");
        let key = RecordingStore::key(7, Uuid::nil(), 2);
        assert_eq!(store.get(&key).await.expect("get"), None);
        store
            .put(&key, Bytes::from_static(b"RIFF"))
            .await
            .expect("put");
        assert_eq!(
            store.get(&key).await.expect("get").as_deref(),
            Some(&b"RIFF"[..])
        );
        store.delete(&key).await.expect("delete");
        store.delete(&key).await.expect("delete again");
        assert_eq!(store.get(&key).await.expect("get"), None);
        let _ = std::fs::remove_dir_all(dir);
        assert_eq!(url_prefix("s3://b/rec/x/"), Some("rec/x".to_owned()));
        assert_eq!(url_prefix("s3://b"), None);
    }
}
