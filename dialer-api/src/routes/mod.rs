//! The HTTP routes of the contract.

/// Success answers: `"status": "success"` and the fields of one body, flattened. One type per
/// body, so that each keeps its own schema name in the document; `ok` answers `200` with it.
macro_rules! success_response {
    ($($(#[doc = $doc:expr])* $name:ident($body:ty);)+) => {$(
        $(#[doc = $doc])*
        #[derive(serde::Serialize, utoipa::ToSchema)]
        pub struct $name {
            #[schema(schema_with = crate::data_schema::success_status)]
            status: &'static str,
            #[serde(flatten)]
            body: $body,
        }

        impl $name {
            pub fn ok(body: $body) -> actix_web::HttpResponse {
                actix_web::HttpResponse::Ok().json(Self {
                    status: "success",
                    body,
                })
            }
        }
    )+};
}

mod account;
mod account_callback;
mod api_keys;
mod batch_control;
mod batch_status;
mod callbacks;
mod calls;
mod dispatch;
mod dnc;
mod health;
mod insert;
mod media;
mod numbers;
pub mod openapi;
mod prompts;
mod recordings;

use actix_web::web;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(web::resource("/healthz").route(web::get().to(health::healthz)))
        .service(web::resource("/readyz").route(web::get().to(health::readyz)))
        .service(web::resource("/metrics").route(web::get().to(crate::metrics::render)))
        .service(
            web::resource("/media/v1/prompts/{prompt_id}/{file}")
                .route(web::get().to(media::prompt_audio)),
        )
        .service(
            web::resource("/media/v1/recordings/{call_id}/{attempt}/{expires}/{tag}")
                .app_data(web::PayloadConfig::new(media::MAX_RECORDING_BYTES))
                .route(web::put().to(media::upload_recording)),
        )
        .service(
            web::scope("/api/v1")
                .service(
                    web::resource([
                        "/queues/insertdataincallqueue",
                        "/queues/insertdataincallqueue/",
                    ])
                    .app_data(crate::account_slots::WorkKind::Submission)
                    .route(web::post().to(insert::insert)),
                )
                .service(
                    web::resource("/queues/batch-status/{batch_id}")
                        .route(web::get().to(batch_status::batch_status)),
                )
                .service(
                    web::resource("/controls/dispatch-calls")
                        .route(web::post().to(dispatch::dispatch_calls)),
                )
                .service(
                    web::resource("/batches/{batch_id}/pause")
                        .route(web::post().to(batch_control::pause)),
                )
                .service(
                    web::resource("/batches/{batch_id}/resume")
                        .route(web::post().to(batch_control::resume)),
                )
                .service(
                    web::resource("/batches/{batch_id}/cancel")
                        .route(web::post().to(batch_control::cancel)),
                )
                .service(web::resource("/calls").route(web::get().to(calls::search_calls)))
                .service(
                    web::resource("/numbers/{phone_number}")
                        .route(web::delete().to(numbers::erase_number)),
                )
                .service(web::resource("/calls/{call_id}").route(web::get().to(calls::get_call)))
                .service(web::resource("/account").route(web::get().to(account::get_account)))
                .service(
                    web::resource("/account/callback")
                        .route(web::put().to(account_callback::set_endpoint))
                        .route(web::delete().to(account_callback::clear_endpoint)),
                )
                .service(
                    web::resource("/account/callback/test")
                        .route(web::post().to(account_callback::test_endpoint)),
                )
                .service(
                    web::resource("/account/callback-secret/rotate")
                        .route(web::post().to(account_callback::rotate_secret)),
                )
                .service(
                    web::resource("/account/keys")
                        .route(web::get().to(api_keys::list_keys))
                        .route(web::post().to(api_keys::create_key)),
                )
                .service(
                    web::resource("/account/keys/{key_id}")
                        .route(web::delete().to(api_keys::revoke_key)),
                )
                .service(
                    web::resource("/dnc")
                        .route(web::get().to(dnc::list))
                        .route(web::post().to(dnc::add)),
                )
                .service(web::resource("/dnc/{phone_number}").route(web::delete().to(dnc::remove)))
                .service(
                    web::resource("/prompts")
                        .route(web::post().to(prompts::create_prompt))
                        .route(web::get().to(prompts::list_prompts)),
                )
                .service(
                    web::resource("/prompts/{prompt_id}")
                        .route(web::delete().to(prompts::delete_prompt)),
                )
                .service(
                    web::resource("/recordings/{call_id}/{attempt}")
                        .route(web::get().to(recordings::get_recording)),
                )
                .service(
                    web::resource("/recordings/{call_id}")
                        .route(web::get().to(recordings::get_call_recording)),
                )
                .service(web::resource("/openapi.json").route(web::get().to(openapi::openapi_json)))
                .service(web::resource("/docs").route(web::get().to(openapi::docs)))
                .service(
                    web::resource("/callbacks").route(web::get().to(callbacks::list_callbacks)),
                )
                // Before `/callbacks/{event_id}`, so `GET /callbacks/redeliver` is a 405.
                .service(
                    web::resource("/callbacks/redeliver")
                        .route(web::post().to(callbacks::redeliver)),
                )
                .service(
                    web::resource("/callbacks/{event_id}")
                        .route(web::get().to(callbacks::get_callback)),
                ),
        );
}
