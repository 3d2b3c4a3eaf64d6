//! A call's recording, uploaded once its channel is gone, as the shipped dialplan's MixMonitor
//! post-command does it (`curl -sf -T <file> <DIALER_RECORD_URL>`): one HTTP `PUT` of the WAV,
//! never retried; a failure (no connection, HTTP 400 or above, as `curl -f` fails) is logged
//! and counted, and the file would stay on the PBX's disk.

use std::path::PathBuf;
use std::time::Duration;

use crate::wav;

/// curl has no time limit of its own; a stuck server must not hold a task forever.
const UPLOAD_TIMEOUT: Duration = Duration::from_secs(120);

#[derive(Debug, thiserror::Error)]
pub(crate) enum UploadError {
    #[error("PUT {url}: {source}")]
    Http { url: String, source: reqwest::Error },
    #[error("PUT {url}: HTTP {status}")]
    Status { url: String, status: u16 },
}

/// The client recordings are uploaded with: redirects are not followed (curl without `-L`),
/// no proxy (see `prompt_fetch::client`).
pub(crate) fn client() -> Result<reqwest::Client, reqwest::Error> {
    reqwest::Client::builder()
        .no_proxy()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(UPLOAD_TIMEOUT)
        .build()
}

/// Uploads the recording of a call that was up for `length`, in the background, keeping a copy
/// in `keep` first if set; `done` learns whether the upload succeeded (the caller counts it).
pub(crate) fn spawn(
    http: reqwest::Client,
    keep: Option<PathBuf>,
    url: String,
    length: Duration,
    uniqueid: String,
    done: impl FnOnce(bool) + Send + 'static,
) {
    tokio::spawn(async move {
        let file = wav::recording(length);
        if let Some(dir) = keep {
            let path = dir.join(format!("{uniqueid}.wav"));
            if let Err(e) = tokio::fs::write(&path, &file).await {
                tracing::warn!(error = %e, path = %path.display(), "keeping a recording's copy failed");
            }
        }
        match put(&http, &url, file).await {
            Ok(()) => done(true),
            Err(e) => {
                tracing::warn!(error = %e, %uniqueid, "recording upload failed");
                done(false);
            }
        }
    });
}

async fn put(http: &reqwest::Client, url: &str, body: Vec<u8>) -> Result<(), UploadError> {
    let response = http
        .put(url)
        .header(reqwest::header::CONTENT_TYPE, "audio/wav")
        .body(body)
        .send()
        .await
        .map_err(|source| UploadError::Http {
            url: url.to_string(),
            source,
        })?;
    let status = response.status().as_u16();
    if status >= 400 {
        return Err(UploadError::Status {
            url: url.to_string(),
            status,
        });
    }
    Ok(())
}
