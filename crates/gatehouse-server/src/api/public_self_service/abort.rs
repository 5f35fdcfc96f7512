//! `DELETE /rest/public/self-service/flow` — abandons the running flow (mirrors the product's protected
//! `DELETE /rest/protected/self-service/flow`). Answers 204 whether or not a flow was running.

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use gatehouse_core::audit::AuditEvent;
use gatehouse_core::flow::session::SessionStatus;
use gatehouse_core::ports::{Acquired, Effect, FlowSessionUpdate};
use gatehouse_core::random::random_id;

use super::KIND;
use crate::api::flow_session::{LEASE_MS, TOKEN_PURPOSE, cookie_name, with_cookie};
use crate::errors::ApiError;
use crate::extract::{ClientIp, cookie, set_cookie, wants_secure_cookie};
use crate::state::AppState;

#[tracing::instrument(name = "pss.abort", skip_all)]
pub async fn handler(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let secure = wants_secure_cookie(&state.config.server, &headers);
    let done = with_cookie(StatusCode::NO_CONTENT.into_response(), &set_cookie(cookie_name(KIND), None, secure));
    let Some(token) = cookie(&headers, cookie_name(KIND), secure) else {
        return Ok(done);
    };
    let now = state.clock.now_ms();
    let token_hash = state.key.hash_secret(TOKEN_PURPOSE, &token);
    match state.store.acquire_flow_session(&token_hash, now, now + LEASE_MS).await? {
        Acquired::NotFound => Ok(done),
        Acquired::Busy => Err(ApiError::flow(gatehouse_core::flow::ErrorCode::ConcurrentAccess)),
        Acquired::Session(session) => {
            let audit = AuditEvent {
                id: random_id(state.random.as_ref()),
                at: now,
                event: "flow.aborted".into(),
                actor: "anonymous".into(),
                user_id: None,
                username: None,
                flow_id: Some(session.flow_id.clone()),
                session_id: Some(session.id.clone()),
                ip,
                outcome: "ok".into(),
                details: serde_json::json!({}),
            };
            let status =
                if session.status == SessionStatus::Active { SessionStatus::Terminated } else { session.status };
            let update = FlowSessionUpdate {
                id: session.id.clone(),
                version: session.version,
                state: session.state.clone(),
                status,
                last_seen_at: now,
                token_hash: None,
            };
            state.store.commit_flow_session(&update, &[Effect::Audit(audit)]).await?;
            Ok(done)
        }
    }
}
