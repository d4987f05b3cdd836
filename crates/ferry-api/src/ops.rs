//! Operability: health and readiness probes, Prometheus metrics (requests by route and status,
//! latency histogram, throttled requests by app and reason) and the middleware that records
//! them.

use crate::ApiState;
use axum::extract::{MatchedPath, Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use std::sync::OnceLock;
use std::time::Instant;

pub(crate) const HTTP_REQUESTS_TOTAL: &str = "ferry_http_requests_total";
pub(crate) const HTTP_REQUEST_DURATION_SECONDS: &str = "ferry_http_request_duration_seconds";
/// Requests refused with a 429, by `client_id` and `reason` (`requests`, `concurrent`).
pub(crate) const HTTP_THROTTLED_TOTAL: &str = "ferry_http_throttled_total";

/// Installs the process-wide metrics recorder once and answers its handle.
pub fn install_metrics() -> PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE
        .get_or_init(|| {
            PrometheusBuilder::new()
                .set_buckets_for_metric(
                    Matcher::Full(HTTP_REQUEST_DURATION_SECONDS.to_string()),
                    &[0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0],
                )
                .expect("valid buckets")
                .install_recorder()
                .expect("no other metrics recorder is installed")
        })
        .clone()
}

pub(crate) async fn record_metrics(request: Request, next: Next) -> Response {
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_string())
        .unwrap_or_else(|| "unmatched".to_string());
    let method = request.method().to_string();
    let started = Instant::now();
    let response = next.run(request).await;
    let status = response.status().as_u16().to_string();
    metrics::counter!(HTTP_REQUESTS_TOTAL, "method" => method.clone(), "route" => route.clone(), "status" => status)
        .increment(1);
    metrics::histogram!(HTTP_REQUEST_DURATION_SECONDS, "method" => method, "route" => route)
        .record(started.elapsed().as_secs_f64());
    response
}

pub(crate) async fn healthz() -> &'static str {
    "ok"
}

pub(crate) async fn readyz(State(state): State<ApiState>) -> Response {
    match state.store().ping().await {
        Ok(()) => (StatusCode::OK, "ready").into_response(),
        Err(e) => {
            tracing::warn!(error = ?e, "readiness check failed");
            (StatusCode::SERVICE_UNAVAILABLE, "database unavailable").into_response()
        }
    }
}

pub(crate) async fn metrics(State(state): State<ApiState>) -> Response {
    if let Some(import) = &state.inner.import
        && let Err(e) = import.publish_queue_gauges().await
    {
        tracing::warn!(error = %e, "cannot read the import queue's gauges");
    }
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], state.inner.metrics.render()).into_response()
}
