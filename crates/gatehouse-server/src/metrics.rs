//! Prometheus metrics: counters and histograms recorded where things happen (`metrics` facade), rendered at
//! `GET /metrics` together with gauges read at scrape time (outbox backlog, hashing pool, database pool).
//! `/metrics` is served on its own address (`metrics.listen`) and, with `metrics.bearer_token_file`, on the
//! public port to requests that carry the token; by default nowhere.
//!
//! The recorder is process-wide: servers started in one process (tests) share it.

use std::sync::OnceLock;
use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::http::StatusCode;
use axum::http::header::{AUTHORIZATION, CONTENT_TYPE};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use subtle::ConstantTimeEq as _;

use crate::state::AppState;

static RECORDER: OnceLock<Option<PrometheusHandle>> = OnceLock::new();

/// Latency buckets in seconds: from a cached answer to a padded or long-polled one.
const BUCKETS: &[f64] = &[0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0];

/// The process's recorder, installed on first use (`None` if another recorder was installed first).
pub fn recorder() -> Option<&'static PrometheusHandle> {
    RECORDER
        .get_or_init(|| {
            let builder = PrometheusBuilder::new().set_buckets_for_metric(Matcher::Suffix("seconds".into()), BUCKETS);
            match builder.and_then(PrometheusBuilder::install_recorder) {
                Ok(handle) => Some(handle),
                Err(e) => {
                    tracing::warn!(error = %e, "metrics: no recorder");
                    None
                }
            }
        })
        .as_ref()
}

/// Middleware: one request counted and timed by route template (not by path: ids would explode the labels),
/// method and status.
pub async fn track(request: Request, next: Next) -> Response {
    let route = request.extensions().get::<MatchedPath>().map_or("unmatched", |p| p.as_str()).to_owned();
    let method = request.method().as_str().to_owned();
    let started = Instant::now();
    let response = next.run(request).await;
    let labels = [("route", route), ("method", method), ("status", response.status().as_u16().to_string())];
    metrics::counter!("gatehouse_http_requests_total", &labels).increment(1);
    metrics::histogram!("gatehouse_http_request_duration_seconds", &labels).record(started.elapsed().as_secs_f64());
    response
}

/// `GET /metrics` on the public port: only with the configured bearer token.
pub async fn public(State(state): State<AppState>, headers: axum::http::HeaderMap) -> Response {
    let Some(expected) = state.metrics_token.as_deref() else {
        return crate::errors::ApiError::NotFound.into_response();
    };
    let given = headers.get(AUTHORIZATION).and_then(|v| v.to_str().ok()).and_then(|v| v.strip_prefix("Bearer "));
    let matches = given.is_some_and(|g| bool::from(g.trim().as_bytes().ct_eq(expected.as_bytes())));
    if !matches {
        return crate::errors::ApiError::NotAuthenticated.into_response();
    }
    render(&state).await
}

/// `GET /metrics` on the metrics address.
pub async fn private(State(state): State<AppState>) -> Response {
    render(&state).await
}

async fn render(state: &AppState) -> Response {
    let Some(handle) = recorder() else {
        return StatusCode::SERVICE_UNAVAILABLE.into_response();
    };
    // Gauges read now: what is true at the moment of the scrape.
    match state.store.outbox_backlog().await {
        Ok((count, oldest)) => {
            metrics::gauge!("gatehouse_outbox_backlog").set(count as f64);
            let age = oldest.map_or(0, |t| state.clock.now_ms().saturating_sub(t).max(0));
            metrics::gauge!("gatehouse_outbox_oldest_age_seconds").set(age as f64 / 1000.0);
        }
        Err(e) => tracing::warn!(error = %e, "metrics: cannot read the outbox backlog"),
    }
    let (busy, waiting) = state.hasher.load();
    metrics::gauge!("gatehouse_hashing_workers_busy").set(busy as f64);
    metrics::gauge!("gatehouse_hashing_workers").set(state.hasher.worker_count() as f64);
    metrics::gauge!("gatehouse_hashing_queue_depth").set(waiting as f64);
    let (size, idle) = state.store.pool_stats();
    metrics::gauge!("gatehouse_db_pool_connections").set(f64::from(size));
    metrics::gauge!("gatehouse_db_pool_idle_connections").set(idle as f64);
    handle.run_upkeep();
    ([(CONTENT_TYPE, "text/plain; version=0.0.4")], handle.render()).into_response()
}
