//! A prompt URL fetched as Asterisk's res_http_media_cache fetches it for `Playback` (an HTTP
//! GET, redirects followed, any 2xx a success, 180 s to complete) and read as format_wav reads
//! a `.wav`: what comes back is how long the prompt plays, or why it cannot be played
//! (`PLAYBACKSTATUS` `FAILED`). Nothing is cached: every playback fetches, so a test sees each.

use std::time::Duration;

use crate::wav::{WavError, prompt_duration};

/// res_http_media_cache.conf `timeout_secs` default.
const FETCH_TIMEOUT: Duration = Duration::from_secs(180);

/// Why a prompt was not played.
#[derive(Debug, thiserror::Error)]
pub(crate) enum PromptError {
    #[error("GET {url}: {source}")]
    Http { url: String, source: reqwest::Error },
    #[error("GET {url}: HTTP {status}")]
    Status { url: String, status: u16 },
    #[error("{url}: {source}")]
    Wav { url: String, source: WavError },
}

/// The client prompts are fetched with. Direct connections: the simulator talks to the test's
/// own servers, never through a proxy the environment may name.
pub(crate) fn client() -> Result<reqwest::Client, reqwest::Error> {
    reqwest::Client::builder()
        .no_proxy()
        .timeout(FETCH_TIMEOUT)
        .build()
}

/// Fetches `url`; how long it plays.
pub(crate) async fn fetch(http: &reqwest::Client, url: &str) -> Result<Duration, PromptError> {
    let http_err = |source| PromptError::Http {
        url: url.to_string(),
        source,
    };
    let response = http.get(url).send().await.map_err(http_err)?;
    let status = response.status();
    if !status.is_success() {
        return Err(PromptError::Status {
            url: url.to_string(),
            status: status.as_u16(),
        });
    }
    let body = response.bytes().await.map_err(http_err)?;
    prompt_duration(&body).map_err(|source| PromptError::Wav {
        url: url.to_string(),
        source,
    })
}
