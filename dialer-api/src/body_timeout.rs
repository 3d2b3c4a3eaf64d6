//! A request body that stops arriving is not waited for forever: every request body is read
//! through a stream that gives up after a pause longer than the idle timeout, or when the whole
//! body took longer than the body timeout, and the request answers `408 request_timeout` (actix
//! then closes the connection, the rest of the body unread). actix's own
//! `client_request_timeout` covers the request head only.

use std::cell::Cell;
use std::rc::Rc;
use std::time::Duration;

use actix_web::body::MessageBody;
use actix_web::dev::{Payload, ServiceRequest, ServiceResponse};
use actix_web::error::PayloadError;
use actix_web::http::StatusCode;
use actix_web::middleware::Next;
use actix_web::web;
use futures_util::StreamExt;
use tokio::time::Instant;

use crate::api_error::ApiError;

/// The two limits, as app data.
#[derive(Debug, Clone, Copy)]
pub struct BodyTimeouts {
    pub idle: Duration,
    pub total: Duration,
}

struct Reading {
    inner: Payload,
    idle: Duration,
    deadline: Instant,
    timed_out: Rc<Cell<bool>>,
}

fn timed(payload: Payload, limits: BodyTimeouts, timed_out: Rc<Cell<bool>>) -> Payload {
    let start = Reading {
        inner: payload,
        idle: limits.idle,
        deadline: Instant::now() + limits.total,
        timed_out,
    };
    let stream = futures_util::stream::unfold(Some(start), |reading| async move {
        let mut r = reading?;
        let until = (Instant::now() + r.idle).min(r.deadline);
        match tokio::time::timeout_at(until, r.inner.next()).await {
            Ok(Some(item)) => Some((item, Some(r))),
            Ok(None) => None,
            Err(_) => {
                r.timed_out.set(true);
                let err =
                    std::io::Error::new(std::io::ErrorKind::TimedOut, "request body timed out");
                Some((Err(PayloadError::Io(err)), None))
            }
        }
    });
    Payload::Stream {
        payload: Box::pin(stream),
    }
}

pub async fn body_timeout(
    mut req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let limits = req
        .app_data::<web::Data<BodyTimeouts>>()
        .map(|d| *d.get_ref());
    let timed_out = Rc::new(Cell::new(false));
    if let Some(limits) = limits {
        let payload = req.parts_mut().1;
        if !matches!(payload, Payload::None) {
            let inner = payload.take();
            *payload = timed(inner, limits, timed_out.clone());
        }
    }
    let res = next.call(req).await?.map_into_boxed_body();
    if !timed_out.get() {
        return Ok(res);
    }
    let message = match limits {
        Some(l) => format!(
            "the request body did not arrive in time (no data for {} ms, or not all within {} ms)",
            l.idle.as_millis(),
            l.total.as_millis()
        ),
        None => "the request body did not arrive in time".to_owned(),
    };
    let err = ApiError::new(StatusCode::REQUEST_TIMEOUT, "request_timeout", message);
    let (req, _) = res.into_parts();
    Ok(ServiceResponse::new(
        req,
        actix_web::ResponseError::error_response(&err),
    ))
}
