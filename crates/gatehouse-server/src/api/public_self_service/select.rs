//! `POST /rest/public/self-service/flows/{flowId}/select` — starts a flow and hands out its session cookie.

use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::response::Response;
use gatehouse_core::flow::session::NewFlowSession;
use gatehouse_core::flow::{self};
use gatehouse_core::random::{random_decimal_id, random_token};

use super::KIND;
use crate::api::flow_session::{Reply, TOKEN_PURPOSE, cookie_name, notify_outbox, respond, with_cookie};
use crate::errors::ApiError;
use crate::extract::{ClientIp, JsonBody, NoInput, set_cookie, wants_secure_cookie};
use crate::state::AppState;

#[tracing::instrument(name = "pss.select", skip_all, fields(flow_id = %flow_id))]
pub async fn handler(
    State(state): State<AppState>,
    Path(flow_id): Path<String>,
    ClientIp(ip): ClientIp,
    headers: HeaderMap,
    JsonBody(_): JsonBody<NoInput>,
) -> Result<Response, ApiError> {
    let flow_config =
        state.config.public_self_service.flow(&flow_id).ok_or_else(|| ApiError::FlowNotFound(flow_id.clone()))?;
    let token = random_token(state.random.as_ref());
    let id = random_decimal_id(state.random.as_ref());
    let deps = state.flow_deps();
    let turn = flow::start(&deps, flow_config, &id, ip.as_deref()).await?;
    let now = state.clock.now_ms();
    let lifetime = i64::try_from(state.config.flow_sessions.max_lifetime_seconds * 1000).unwrap_or(i64::MAX);
    let session = NewFlowSession {
        id: id.clone(),
        token_hash: state.key.hash_secret(TOKEN_PURPOSE, &token),
        kind: KIND,
        flow_id,
        state: serde_json::to_value(&turn.state).map_err(|e| ApiError::Internal(e.to_string()))?,
        status: turn.status,
        created_at: now,
        expires_at: now.saturating_add(lifetime),
    };
    state.store.create_flow_session(&session, &turn.effects).await?;
    notify_outbox(&state, &turn.effects);
    let secure = wants_secure_cookie(&state.config.server, &headers);
    let reply = Reply { kind: KIND, id: &id, status: turn.status, secure, lock_expiry: None, extra: turn.attributes };
    let response = respond(&state, reply, turn.outcome);
    Ok(with_cookie(response, &set_cookie(cookie_name(KIND), Some(&token), secure)))
}
