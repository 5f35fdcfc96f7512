//! Authentication (`/rest/public/authentication/…`): the password check starts the default application's flow,
//! the second factor follows; success creates an authenticated session with a new cookie.

mod app;
mod mtan_check;
mod mtan_resend;
mod otp_check;
mod password_check;
mod selection;

use std::time::Duration;

use axum::Router;
use axum::http::HeaderMap;
use axum::response::Response;
use axum::routing::post;
use gatehouse_core::flow::auth::{self, AuthAction, AuthState};
use gatehouse_core::flow::session::{FlowKind, NewFlowSession, SessionStatus};
use gatehouse_core::flow::{ErrorCode, Outcome};
use gatehouse_core::random::{random_id, random_token};

use super::flow_session::{self, Held, Reply, TOKEN_PURPOSE, cookie_name, with_cookie};
use crate::errors::ApiError;
use crate::extract::{set_cookie, wants_secure_cookie};
use crate::state::AppState;

const KIND: FlowKind = FlowKind::Authentication;
/// The cookie of the authenticated session.
pub const SESSION_COOKIE: &str = "gatehouse_session";

pub fn routes() -> Router<AppState> {
    let base = "/public/authentication";
    let mut r = Router::new();
    for (path, handler) in [
        ("password/check", post(password_check::handler)),
        ("otp/check", post(otp_check::handler)),
        ("mtan/otp/check", post(mtan_check::handler)),
        ("mtan/otp/resend", post(mtan_resend::handler)),
        ("selection/options/retrieve", post(selection::retrieve)),
        ("selection/options/{option_id}/select", post(selection::select)),
        ("app-2fa/status/poll", post(app::poll)),
        ("app-2fa/offline/challenge", post(app::offline_challenge)),
        ("app-2fa/offline/check", post(app::offline_check)),
    ] {
        r = r.route(&format!("{base}/{path}"), handler.clone()).route(&format!("{base}/{path}/"), handler);
    }
    r
}

/// Runs one call of the authentication flow. With `start`, a call without a running flow starts one (the
/// password check starts the default application's flow, as in the product).
pub(crate) async fn run(
    state: &AppState,
    headers: &HeaderMap,
    ip: Option<String>,
    action: AuthAction,
    start: bool,
) -> Result<Response, ApiError> {
    let fixed_time = (start && state.config.authentication.enumeration_protection)
        .then(|| Duration::from_millis(state.config.authentication.response_time_ms));
    let started = tokio::time::Instant::now();
    let (state, headers) = (state.clone(), headers.clone());
    let response = flow_session::detached(async move {
        let held = match flow_session::acquire(&state, &headers, KIND).await {
            Ok(Some(held)) => held,
            Ok(None) if start => return start_flow(&state, &headers, ip, action).await,
            Ok(None) => return Err(ApiError::flow(ErrorCode::UnexpectedCall)),
            Err(response) => return Ok(response),
        };
        match handle(&state, &held, ip, action).await {
            Ok(response) => Ok(response),
            Err(e) => {
                flow_session::release(&state, &held).await;
                Err(e)
            }
        }
    })
    .await;
    // In enumeration-protection mode every failed password check takes the same, fixed time.
    if let Some(fixed) = fixed_time
        && response.as_ref().map_or(true, |r| !r.status().is_success())
    {
        tokio::time::sleep_until(started + fixed).await;
    }
    response
}

/// A password check without a running flow: the flow starts here, with its own new cookie.
async fn start_flow(
    state: &AppState,
    headers: &HeaderMap,
    ip: Option<String>,
    action: AuthAction,
) -> Result<Response, ApiError> {
    let token = random_token(state.random.as_ref());
    let id = random_id(state.random.as_ref());
    let deps = state.flow_deps();
    let turn = auth::handle(&deps, &id, ip.as_deref(), AuthState::default(), action).await?;
    let now = state.clock.now_ms();
    let lifetime = i64::try_from(state.config.flow_sessions.max_lifetime_seconds * 1000).unwrap_or(i64::MAX);
    let session = NewFlowSession {
        id: id.clone(),
        token_hash: state.key.hash_secret(TOKEN_PURPOSE, &token),
        kind: KIND,
        flow_id: "default-application".into(),
        state: serde_json::to_value(&turn.state).map_err(|e| ApiError::Internal(e.to_string()))?,
        status: turn.status,
        created_at: now,
        expires_at: now.saturating_add(lifetime),
    };
    state.store.create_flow_session(&session, &turn.effects).await?;
    flow_session::notify_outbox(state, &turn.effects);
    let secure = wants_secure_cookie(&state.config.server, headers);
    let response = finish(state, &id, turn, secure);
    if session.status == SessionStatus::Active {
        return Ok(with_cookie(response, &set_cookie(cookie_name(KIND), Some(&token), secure)));
    }
    Ok(response)
}

/// The authentication flow's current state, read without holding the session (for long polls).
pub(crate) async fn peek(state: &AppState, headers: &HeaderMap) -> Option<AuthState> {
    match flow_session::acquire(state, headers, KIND).await {
        Ok(Some(held)) => {
            flow_session::release(state, &held).await;
            serde_json::from_value(held.record.state.clone()).ok()
        }
        _ => None,
    }
}

async fn handle(state: &AppState, held: &Held, ip: Option<String>, action: AuthAction) -> Result<Response, ApiError> {
    let Ok(auth_state) = serde_json::from_value::<AuthState>(held.record.state.clone()) else {
        return Ok(flow_session::end(state, held, ErrorCode::FlowSessionExpired).await);
    };
    let deps = state.flow_deps();
    let turn = auth::handle(&deps, &held.record.id, ip.as_deref(), auth_state, action).await?;
    let new_state = serde_json::to_value(&turn.state).map_err(|e| ApiError::Internal(e.to_string()))?;
    flow_session::commit(state, held, new_state, turn.status, &turn.effects).await?;
    Ok(finish(state, &held.record.id, turn, held.secure))
}

/// Encodes a turn; a completed flow hands out the authenticated session's cookie.
fn finish(state: &AppState, id: &str, turn: auth::AuthTurn, secure: bool) -> Response {
    let extra = turn.attributes.clone();
    let done = matches!(turn.outcome, Outcome::Continue(None));
    let reply = Reply { kind: KIND, id, status: turn.status, secure, lock_expiry: turn.temporary_lock_expiry, extra };
    let response = flow_session::respond(state, reply, turn.outcome);
    match turn.session_token {
        Some(token) if done => with_cookie(response, &set_cookie(SESSION_COOKIE, Some(&token), secure)),
        _ => response,
    }
}
