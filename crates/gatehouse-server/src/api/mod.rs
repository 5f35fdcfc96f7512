//! REST routes. One file per endpoint; flow calls share [`flow_session`].

pub mod admin;
pub mod authentication;
pub mod device;
mod factor_calls;
pub(crate) mod flow_session;
pub mod health;
mod limits;
mod openapi;
mod pending_flow;
pub mod protected;
pub mod public_self_service;
mod routes;
mod self_registration;
mod v1;

use axum::Router;
use axum::http::Method;
use axum::routing::get;

use routes::{Answer, Auth, Doc, Served};

use crate::errors::ApiError;
use crate::extract::require_same_domain;
use crate::state::AppState;

/// Every route with its description: the router and the OpenAPI document are both made from it.
pub(crate) fn table() -> (Router<AppState>, Vec<Served>) {
    let (rest, rest_served) = public_self_service::routes()
        .merge(authentication::routes())
        .merge(protected::routes())
        .merge(admin::routes())
        .merge(device::routes())
        .merge(self_registration::routes())
        .into_parts();
    let (top, top_served) = v1::routes()
        .at(Method::GET, "/health/live", get(health::live), Doc::new("The process runs", Auth::Public, Answer::Status))
        .at(
            Method::GET,
            "/health/ready",
            get(health::ready),
            Doc::new("The node can serve: the database answers (503 when it does not)", Auth::Public, Answer::Status),
        )
        .at(
            Method::GET,
            "/metrics",
            get(crate::metrics::public),
            Doc::new(
                "Prometheus metrics, with the bearer token of metrics.bearer_token_file (404 without one)",
                Auth::Public,
                Answer::Text,
            ),
        )
        .at(
            Method::GET,
            "/openapi.json",
            get(openapi::handler),
            Doc::new("This document", Auth::Public, Answer::Document("OpenAPI 3.1")),
        )
        .into_parts();
    let served =
        rest_served.into_iter().map(|s| Served { path: format!("/rest{}", s.path), ..s }).chain(top_served).collect();
    let router = Router::new().nest("/rest", rest.layer(axum::middleware::from_fn(require_same_domain))).merge(top);
    (router, served)
}

pub fn router(state: AppState) -> Router {
    let (api, _) = table();
    let api = if state.config.ui.enabled { api.merge(crate::ui::router()) } else { api };
    api.fallback(|| async { ApiError::NotFound })
        .method_not_allowed_fallback(|| async { ApiError::MethodNotAllowed })
        .with_state(state)
}

/// The OpenAPI document of every route.
pub fn openapi_json() -> String {
    serde_json::to_string_pretty(openapi::document()).unwrap_or_default()
}

/// Waits until an approval event equal to `wanted` arrives, or a second passed (the database is checked again
/// either way: events only say when to look).
pub(crate) async fn approval_event(events: &mut tokio::sync::broadcast::Receiver<String>, wanted: &str) {
    let fallback = tokio::time::sleep(std::time::Duration::from_secs(1));
    tokio::pin!(fallback);
    loop {
        tokio::select! {
            () = &mut fallback => return,
            event = events.recv() => match event {
                Ok(e) if e == wanted => return,
                Ok(_) => {}
                // Missed events or a closed channel: look at the database now.
                Err(_) => return,
            },
        }
    }
}

/// The long poll of an authenticator step waits for the flow's request, holding nothing: going offline stays
/// possible meanwhile. A request nobody can answer (stealth mode) waits the same way.
pub(crate) async fn wait_for_decision(
    state: &AppState,
    headers: &axum::http::HeaderMap,
    kind: gatehouse_core::flow::FlowKind,
) -> Result<(), ApiError> {
    let Some(flow) = flow_session::peek(state, headers, kind).await else { return Ok(()) };
    let gatehouse_core::flow::session::Scratch::App(challenge) = flow.scratch else { return Ok(()) };
    wait_for_approval(state, challenge.approval_id.as_deref(), Some(challenge.expires_at)).await
}

/// Waits, holding nothing, until approval request `approval_id` is decided, `expires_at` passes, or the poll
/// time is up. A request without an id (stealth mode: nobody can answer it) just waits. The database decides;
/// approval events (LISTEN/NOTIFY across nodes) only say when to look again.
pub(crate) async fn wait_for_approval(
    state: &AppState,
    approval_id: Option<&str>,
    expires_at: Option<gatehouse_core::clock::Millis>,
) -> Result<(), ApiError> {
    let deadline =
        tokio::time::Instant::now() + std::time::Duration::from_secs(state.config.authenticator.poll_wait_seconds);
    let _waiting = WaitingPoll::new();
    let mut events = state.store.approval_events();
    let wanted = format!("decided:{}", approval_id.unwrap_or_default());
    loop {
        let now = state.clock.now_ms();
        let (settled, expiry) = match approval_id {
            Some(id) => match state.store.get_approval(id).await? {
                Some(a) => (a.status != gatehouse_core::ports::ApprovalStatus::Pending, a.expires_at),
                None => (true, now),
            },
            None => (false, expires_at.unwrap_or(now)),
        };
        if settled || now >= expiry || tokio::time::Instant::now() >= deadline {
            return Ok(());
        }
        let left = std::time::Duration::from_millis(u64::try_from(expiry - now).unwrap_or(0));
        let until = deadline.min(tokio::time::Instant::now() + left);
        tokio::time::timeout_at(until, approval_event(&mut events, &wanted)).await.ok();
    }
}

/// Counts a long poll while it waits (`gatehouse_long_polls_waiting`), however it ends.
struct WaitingPoll;

impl WaitingPoll {
    fn new() -> Self {
        metrics::gauge!("gatehouse_long_polls_waiting").increment(1.0);
        Self
    }
}

impl Drop for WaitingPoll {
    fn drop(&mut self) {
        metrics::gauge!("gatehouse_long_polls_waiting").decrement(1.0);
    }
}
