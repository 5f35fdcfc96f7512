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
use gatehouse_core::ports::LOOK_AGAIN;
use tokio::sync::broadcast::error::RecvError;

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

/// Waits until the approval event `wanted` or [`LOOK_AGAIN`] arrives, or this receiver fell behind: then the caller
/// reads the database. Nothing else wakes it; the caller bounds the wait by its deadline. A waiting long poll thus
/// reads the database when it starts, on news and at its end, not every second (thousands of devices wait at
/// once, each in a long poll of its own).
pub(crate) async fn approval_event(events: &mut tokio::sync::broadcast::Receiver<String>, wanted: &str) {
    loop {
        match events.recv().await {
            Ok(e) if e == wanted || e == LOOK_AGAIN => return,
            Ok(_) => {}
            // Events were missed: look at the database now.
            Err(RecvError::Lagged(_)) => return,
            // The store is gone (it holds the sender): look every second, as there is no news to wait for.
            Err(RecvError::Closed) => {
                tokio::time::sleep(std::time::Duration::from_secs(1)).await;
                return;
            }
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
        if !wait_for_news(&mut events, &wanted, until).await {
            return Ok(());
        }
    }
}

/// A long poll's wait: until approval event `wanted` (see [`approval_event`]) or `until`. `false`: the request's
/// client hung up, so the poll should end now, as it would at its deadline (nobody is left to tell the news).
pub(crate) async fn wait_for_news(
    events: &mut tokio::sync::broadcast::Receiver<String>,
    wanted: &str,
    until: tokio::time::Instant,
) -> bool {
    let _waiting = WaitingPoll::new();
    tokio::select! {
        _ = tokio::time::timeout_at(until, approval_event(events, wanted)) => true,
        () = crate::completion::client_gone() => false,
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

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use gatehouse_core::ports::LOOK_AGAIN;

    use super::approval_event;

    /// Whether the waiter returns, given what was sent before it starts to wait.
    async fn returns_after(sent: &[&str], capacity: usize) -> bool {
        let (tx, mut rx) = tokio::sync::broadcast::channel(capacity);
        for e in sent {
            tx.send((*e).to_owned()).unwrap();
        }
        // Longer than the second after which waiters used to read the database anyway.
        tokio::time::timeout(Duration::from_millis(1500), approval_event(&mut rx, "decided:a1")).await.is_ok()
    }

    #[tokio::test]
    async fn a_waiter_wakes_on_its_event_on_look_again_and_when_it_fell_behind_only() {
        assert!(returns_after(&["created:u1", "decided:a2", "decided:a1"], 8).await);
        assert!(returns_after(&[LOOK_AGAIN], 8).await);
        assert!(returns_after(&["decided:a2", "decided:a3", "decided:a4"], 2).await, "missed events");
        // Other waiters' events, and time, wake nobody: no periodic read of the database.
        assert!(!returns_after(&["created:u1", "decided:a2", "decided:a1x"], 8).await);
        assert!(!returns_after(&[], 8).await);
    }
}
