//! The operator console: a web page served by the API process at `/console` (docs/console.md).
//! Operators sign in with a token of their own (`dialerctl operator create`), watch the platform
//! live (server-sent events of one snapshot per process) and act on it through the same
//! operations as the API and dialerctl; every action is protected against cross-site requests
//! and written to the audit log.

mod actions;
mod audit;
mod csrf;
mod html;
mod hub;
mod live;
mod page;
mod series;
mod session;
pub mod settings;
mod sign_in;
mod snapshot;

use actix_web::web;

pub use csrf::HEADER as CSRF_HEADER;
pub use hub::close_on_signal;
pub use session::COOKIE as SESSION_COOKIE;
pub use settings::Console;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(web::resource("/console").route(web::get().to(page::console)))
        .service(
            web::resource("/console/sign-in")
                .route(web::get().to(sign_in::sign_in_page))
                .route(web::post().to(sign_in::sign_in)),
        )
        .service(web::resource("/console/sign-out").route(web::post().to(sign_in::sign_out)))
        .service(web::resource("/console/live").route(web::get().to(live::live)))
        .service(web::resource("/console/actions").route(web::post().to(actions::act)))
        .service(web::resource("/console/assets/{name}").route(web::get().to(page::asset)));
}
