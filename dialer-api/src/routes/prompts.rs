//! `POST /prompts` (a WAV upload, or text the platform speaks), `GET /prompts`,
//! `DELETE /prompts/{prompt_id}`.

use actix_web::{HttpRequest, HttpResponse, web};

use crate::api_error::{ApiError, ApiResult, ErrorResponse};
use crate::auth::Client;
use crate::json_body::{self, media_type};
use crate::ops::prompts::{self, PromptInfo, PromptSource};
use crate::prompt_audio::{self, AudioError, MAX_PROMPT_BYTES};
use crate::speech::{self, MAX_TEXT_CHARS, SpeechError};

success_response! {
    /// The prompt stored.
    PromptResponse(PromptInfo);
}

/// The account's prompts.
#[derive(serde::Serialize, utoipa::ToSchema)]
pub struct PromptList {
    #[schema(schema_with = crate::data_schema::success_status)]
    status: &'static str,
    prompts: Vec<PromptInfo>,
}

/// The prompt deleted.
#[derive(serde::Serialize, utoipa::ToSchema)]
pub struct PromptDeleted {
    #[schema(schema_with = crate::data_schema::success_status)]
    status: &'static str,
    prompt_id: String,
    deleted: bool,
}

/// Add an audio prompt.
///
/// A WAV file (`audio/wav`: 16-bit PCM, mono, 8 or 16 kHz, at most 10 MB), stored as uploaded
/// minus any metadata; or `{"text": "...", "language": "en"}`, spoken by the platform's
/// text-to-speech and stored at 8 kHz (as every prompt: a 16 kHz upload is resampled). Batches name it in `message_prompt` or
/// `voicemail_prompt`.
#[utoipa::path(
    post,
    path = "/api/v1/prompts",
    tag = "prompts",
    request_body(
        description = "a WAV file, or text to speak",
        content(
            (String = "audio/wav"),
            (crate::api_schema::SpokenPrompt = "application/json"),
        )
    ),
    responses(
        (status = 200, description = "stored", body = PromptResponse),
        (status = 400, description = "`invalid_request`: not a WAV, not playable (rate, channels, sample format), empty or too long text, unknown language", body = ErrorResponse),
        (status = 413, description = "`payload_too_large`: over 10 MB", body = ErrorResponse),
        (status = 415, description = "`unsupported_media_type`: neither audio/wav nor application/json", body = ErrorResponse),
        (status = 503, description = "`unavailable`: the text-to-speech engine failed; nothing was stored", body = ErrorResponse),
    )
)]
pub async fn create_prompt(
    Client { state, account, .. }: Client,
    req: HttpRequest,
    body: web::Bytes,
) -> ApiResult<HttpResponse> {
    if body.len() > MAX_PROMPT_BYTES {
        return Err(ApiError::payload_too_large(format!(
            "a prompt is at most {MAX_PROMPT_BYTES} bytes; this one is {}",
            body.len()
        )));
    }
    let (mime, content_type) = media_type(&req);
    let (pcm, text) = match mime.as_str() {
        "audio/wav" | "audio/x-wav" | "audio/wave" | "audio/vnd.wave" => {
            let pcm = prompt_audio::check_upload(&body).map_err(invalid_audio)?;
            (pcm, None)
        }
        "application/json" => {
            let (text, language) = spoken(&body)?;
            let wav = state
                .speech
                .speak(&text, &language)
                .await
                .map_err(|e| match e {
                    SpeechError::UnknownLanguage(_) => {
                        ApiError::invalid_request(format!("`language`: {e}"))
                    }
                    SpeechError::Engine(_) => {
                        tracing::error!(error = %e, "text to speech failed");
                        ApiError::unavailable("text to speech failed; try again later")
                    }
                })?;
            let pcm = prompt_audio::from_speech(&wav).map_err(|e| {
                tracing::error!(error = %e, "the speech engine wrote no usable WAV");
                ApiError::unavailable("text to speech failed; try again later")
            })?;
            (pcm, Some((text, language)))
        }
        _ => {
            return Err(json_body::unsupported(
                "audio/wav or application/json",
                content_type,
            ));
        }
    };
    let source = match &text {
        Some((text, language)) => PromptSource::Text { text, language },
        None => PromptSource::Wav,
    };
    let mut conn = state.pool.get().await?;
    let info = prompts::create(&mut conn, account.id, source, &pcm).await?;
    tracing::info!(prompt = %info.prompt_id, duration_ms = info.duration_ms, "prompt stored");
    Ok(PromptResponse::ok(info))
}

fn invalid_audio(e: AudioError) -> ApiError {
    ApiError::invalid_request(e.to_string())
}

/// `{"text": ..., "language": ...}` (language `en` by default).
fn spoken(body: &[u8]) -> ApiResult<(String, String)> {
    let top = json_body::parse_object(body)?;
    top.only(&["text", "language"])?;
    let text: String = top.require("text", "the text to speak")?;
    let language: String = top
        .get("language", "a language tag such as `en`")?
        .unwrap_or_else(|| "en".to_owned());
    if text.trim().is_empty() {
        return Err(ApiError::invalid_request("`text` is empty"));
    }
    if text.chars().count() > MAX_TEXT_CHARS {
        return Err(ApiError::invalid_request(format!(
            "`text` is at most {MAX_TEXT_CHARS} characters"
        )));
    }
    if text.contains('\0') {
        return Err(ApiError::invalid_request("`text` must not contain NUL"));
    }
    if !speech::is_language(&language) {
        return Err(ApiError::invalid_request(
            "`language` must be a language tag such as `en` or `pt-br`",
        ));
    }
    Ok((text, language))
}

/// The account's prompts, oldest first.
#[utoipa::path(
    get,
    path = "/api/v1/prompts",
    tag = "prompts",
    responses((status = 200, description = "the account's prompts", body = PromptList))
)]
pub async fn list_prompts(Client { state, account, .. }: Client) -> ApiResult<HttpResponse> {
    let mut conn = state.pool.get().await?;
    let prompts = prompts::list(&mut conn, account.id).await?;
    Ok(HttpResponse::Ok().json(PromptList {
        status: "success",
        prompts,
    }))
}

/// Delete a prompt no batch still plays.
#[utoipa::path(
    delete,
    path = "/api/v1/prompts/{prompt_id}",
    tag = "prompts",
    params(("prompt_id" = String, Path, description = "`prm_...`")),
    responses(
        (status = 200, description = "deleted", body = PromptDeleted),
        (status = 404, description = "`not_found`: no such prompt in this account", body = ErrorResponse),
        (status = 409, description = "`prompt_in_use`: a batch not finished yet (or the account's defaults) plays it", body = ErrorResponse),
    )
)]
pub async fn delete_prompt(
    Client { state, account, .. }: Client,
    path: web::Path<String>,
) -> ApiResult<HttpResponse> {
    let prompt_id = path.into_inner();
    if !dialer_core::call_flow::is_prompt_id(&prompt_id) {
        return Err(ApiError::not_found(format!(
            "no prompt `{}`",
            dialer_core::client_text::quoted(&prompt_id)
        )));
    }
    let mut conn = state.pool.get().await?;
    prompts::delete(&mut conn, account.id, &prompt_id).await?;
    Ok(HttpResponse::Ok().json(PromptDeleted {
        status: "success",
        prompt_id,
        deleted: true,
    }))
}
