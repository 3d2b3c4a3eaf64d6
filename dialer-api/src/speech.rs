//! Text to speech for prompts, behind one small interface so another engine can replace the
//! one shipped: `espeak-ng` (a Debian package), run as a child process per prompt, text on its
//! standard input (never on its command line), WAV on its standard output.

use std::process::Stdio;
use std::time::Duration;

use futures_util::future::BoxFuture;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Longest text spoken into one prompt, in characters.
pub const MAX_TEXT_CHARS: usize = 2000;

#[derive(Debug, thiserror::Error)]
pub enum SpeechError {
    /// The engine does not speak this language.
    #[error("the text-to-speech engine has no voice for language `{0}`")]
    UnknownLanguage(String),
    /// The engine could not be run, failed, or took too long: not the client's doing.
    #[error("text to speech failed: {0}")]
    Engine(String),
}

/// Speaks text into a WAV file (any rate; the caller resamples).
pub trait SpeechEngine: Send + Sync {
    fn speak<'a>(
        &'a self,
        text: &'a str,
        language: &'a str,
    ) -> BoxFuture<'a, Result<Vec<u8>, SpeechError>>;
}

/// `espeak-ng -v <language> --stdout --stdin` (22.05 kHz mono WAV).
#[derive(Debug, Clone)]
pub struct EspeakNg {
    pub program: String,
    pub timeout: Duration,
}

impl Default for EspeakNg {
    fn default() -> EspeakNg {
        EspeakNg {
            program: "espeak-ng".to_owned(),
            timeout: Duration::from_secs(30),
        }
    }
}

impl SpeechEngine for EspeakNg {
    fn speak<'a>(
        &'a self,
        text: &'a str,
        language: &'a str,
    ) -> BoxFuture<'a, Result<Vec<u8>, SpeechError>> {
        Box::pin(async move {
            let engine = |e: std::io::Error| SpeechError::Engine(format!("{}: {e}", self.program));
            let mut child = tokio::process::Command::new(&self.program)
                .args(["-v", language, "--stdout", "--stdin"])
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .kill_on_drop(true)
                .spawn()
                .map_err(engine)?;
            let run = async {
                if let Some(mut stdin) = child.stdin.take() {
                    stdin.write_all(text.as_bytes()).await.map_err(engine)?;
                    // Closed: the engine speaks what it read.
                }
                let mut out = Vec::new();
                if let Some(mut stdout) = child.stdout.take() {
                    stdout.read_to_end(&mut out).await.map_err(engine)?;
                }
                let mut err = String::new();
                if let Some(mut stderr) = child.stderr.take() {
                    stderr.read_to_string(&mut err).await.map_err(engine)?;
                }
                let status = child.wait().await.map_err(engine)?;
                Ok::<_, SpeechError>((status, out, err))
            };
            let (status, out, err) =
                tokio::time::timeout(self.timeout, run)
                    .await
                    .map_err(|_| {
                        SpeechError::Engine(format!("no speech within {:?}", self.timeout))
                    })??;
            if !status.success() {
                if err.contains("voice does not exist") {
                    return Err(SpeechError::UnknownLanguage(language.to_owned()));
                }
                return Err(SpeechError::Engine(format!(
                    "{} exited with {status}: {}",
                    self.program,
                    err.trim()
                )));
            }
            Ok(out)
        })
    }
}

/// A language tag as the engine takes it (`en`, `en-us`, `pt-br`): anything else is refused
/// before it reaches a command line.
pub fn is_language(tag: &str) -> bool {
    let mut parts = tag.split('-');
    let primary_ok = parts
        .next()
        .is_some_and(|p| (2..=3).contains(&p.len()) && p.bytes().all(|b| b.is_ascii_lowercase()));
    primary_ok
        && parts.all(|p| (1..=8).contains(&p.len()) && p.bytes().all(|b| b.is_ascii_alphanumeric()))
        && tag.len() <= 20
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn language_tags() {
        for ok in ["en", "en-us", "pt-br", "yue", "en-gb-x-rp"] {
            assert!(is_language(ok), "{ok}");
        }
        for bad in [
            "", "e", "EN", "en_US", "-v", "en us", "en-", "abcd", "en;rm",
        ] {
            assert!(!is_language(bad), "{bad}");
        }
    }
}
