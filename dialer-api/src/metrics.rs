//! Prometheus metrics (`GET /metrics`): requests by route and status, a latency histogram, and
//! rows accepted / rejected / duplicate at submission. One recorder per process, installed on
//! first use (tests start several applications in one process).

use std::sync::OnceLock;
use std::time::Instant;

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::middleware::Next;
use actix_web::{HttpResponse, http::header};
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};

static HANDLE: OnceLock<Option<PrometheusHandle>> = OnceLock::new();

const LATENCY_BUCKETS: &[f64] = &[
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// Installs the global recorder once; `None` if another recorder was installed first.
pub fn handle() -> Option<&'static PrometheusHandle> {
    HANDLE
        .get_or_init(|| {
            let recorder = PrometheusBuilder::new()
                .set_buckets(LATENCY_BUCKETS)
                .map(|b| b.build_recorder())
                .ok()?;
            let handle = recorder.handle();
            metrics::set_global_recorder(recorder).ok()?;
            dialer_core::metrics_http::keep_up(handle.clone());
            Some(handle)
        })
        .as_ref()
}

/// Prometheus metrics (text exposition format).
#[utoipa::path(
    get,
    path = "/metrics",
    tag = "operations",
    responses((status = 200, description = "Prometheus text format", content_type = "text/plain; version=0.0.4", body = String))
)]
pub async fn render() -> HttpResponse {
    let body = match handle() {
        Some(h) => {
            h.run_upkeep();
            h.render()
        }
        None => String::new(),
    };
    HttpResponse::Ok()
        .insert_header((header::CONTENT_TYPE, "text/plain; version=0.0.4"))
        .body(body)
}

/// Counts every request by its route pattern (never the raw path: ids would explode the
/// label space) and status, and observes its latency.
pub async fn track(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let started = Instant::now();
    let method = method_label(req.method());
    let res = next.call(req).await?;
    let route = res
        .request()
        .match_pattern()
        .unwrap_or_else(|| "unmatched".to_owned());
    let status = res.status().as_u16().to_string();
    metrics::counter!("http_requests_total", "route" => route.clone(), "method" => method, "status" => status)
        .increment(1);
    metrics::histogram!("http_request_duration_seconds", "route" => route)
        .record(started.elapsed().as_secs_f64());
    Ok(res)
}

/// The method as a label: the standard ones by name, any other as `other`, so requests with
/// invented methods (sent without a key) cannot add series without bound.
fn method_label(method: &actix_web::http::Method) -> &'static str {
    use actix_web::http::Method;
    match *method {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::PATCH => "PATCH",
        Method::DELETE => "DELETE",
        Method::HEAD => "HEAD",
        Method::OPTIONS => "OPTIONS",
        _ => "other",
    }
}

/// Rows of one submission, by outcome.
pub fn rows(accepted: usize, duplicates: usize, rejected: &[(&'static str, usize)]) {
    metrics::counter!("ingest_rows_total", "outcome" => "accepted").increment(accepted as u64);
    metrics::counter!("ingest_rows_total", "outcome" => "duplicate").increment(duplicates as u64);
    for (reason, n) in rejected {
        metrics::counter!("ingest_rows_rejected_total", "reason" => *reason).increment(*n as u64);
    }
}
