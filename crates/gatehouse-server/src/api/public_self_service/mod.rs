//! Public self-service flows (`/rest/public/self-service/…`): select a flow, then drive it call by call.
//! The flow session travels in an HttpOnly cookie; only its keyed hash is stored.

mod abort;
mod email_otp_check;
mod email_otp_resend;
mod identify;
mod password_set;
mod select;

use axum::Router;
use axum::http::header::SET_COOKIE;
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, post};
use gatehouse_core::flow::session::{FlowKind, FlowState, SessionStatus};
use gatehouse_core::flow::{self, Action, ErrorCode, FlowError, Outcome};
use gatehouse_core::ports::{Acquired, Effect, FlowSessionUpdate};

use crate::documents;
use crate::errors::ApiError;
use crate::extract::{FLOW_COOKIE, cookie, flow_cookie, wants_secure_cookie};
use crate::state::AppState;

/// How long one request may hold a flow session before another may take it over.
const LEASE_MS: i64 = 30_000;
const TOKEN_PURPOSE: &str = "flow-session";

pub fn routes() -> Router<AppState> {
    let base = "/public/self-service";
    let mut r = Router::new()
        .route(&format!("{base}/flows/{{flow_id}}/select"), post(select::handler))
        .route(&format!("{base}/flow"), delete(abort::handler));
    // The product documents some paths with a trailing slash and some without; accept both spellings.
    for (path, handler) in [
        ("username/identify", post(identify::handler)),
        ("verification/email/otp/check", post(email_otp_check::handler)),
        ("verification/email/otp/resend", post(email_otp_resend::handler)),
        ("password/set", post(password_set::handler)),
    ] {
        r = r.route(&format!("{base}/{path}"), handler.clone()).route(&format!("{base}/{path}/"), handler);
    }
    r.route(&format!("{base}/flows/{{flow_id}}/select/"), post(select::handler))
}

/// Runs one call on the flow session named by the request's cookie. The work runs in its own task so that
/// a client hanging up mid-call cannot leave the session half-handled or its lease held.
pub(crate) async fn run(
    state: &AppState,
    headers: &HeaderMap,
    ip: Option<String>,
    action: Action,
) -> Result<Response, ApiError> {
    let (state, headers) = (state.clone(), headers.clone());
    tokio::spawn(async move { run_call(&state, &headers, ip, action).await })
        .await
        .map_err(|e| ApiError::Internal(format!("flow call task failed: {e}")))?
}

async fn run_call(
    state: &AppState,
    headers: &HeaderMap,
    ip: Option<String>,
    action: Action,
) -> Result<Response, ApiError> {
    let token = cookie(headers, FLOW_COOKIE).ok_or(ApiError::flow(ErrorCode::UnexpectedCall))?;
    let token_hash = state.key.hash_secret(TOKEN_PURPOSE, &token);
    let now = state.clock.now_ms();
    let session = match state.store.acquire_flow_session(&token_hash, now, now + LEASE_MS).await? {
        Acquired::Session(s) => s,
        Acquired::Busy => return Err(ApiError::flow(ErrorCode::ConcurrentAccess)),
        Acquired::NotFound => return Err(ApiError::flow(ErrorCode::UnexpectedCall)),
    };
    let secure = wants_secure_cookie(&state.config.server, headers);
    let release = |e: ApiError| async {
        if let Err(release_error) = state.store.release_flow_session(&session.id, session.version).await {
            tracing::warn!(error = %release_error, "could not release flow session");
        }
        Err::<Response, ApiError>(e)
    };
    if session.status != SessionStatus::Active || session.kind != FlowKind::PublicSelfService {
        return release(ApiError::flow(ErrorCode::UnexpectedCall)).await;
    }
    let idle_ms = i64::try_from(state.config.flow_sessions.idle_timeout_seconds * 1000).unwrap_or(i64::MAX);
    let flow_config = state.config.public_self_service.flow(&session.flow_id);
    let flow_state = serde_json::from_value::<FlowState>(session.state.clone());
    let (Some(flow_config), Ok(flow_state)) = (flow_config, flow_state) else {
        // The flow was removed from the configuration (or changed shape) while this session ran.
        return end_session(state, &session.id, session.version, now, ErrorCode::FlowSessionExpired, secure).await;
    };
    if now >= session.expires_at || now - session.last_seen_at > idle_ms || flow_state.step > flow_config.steps.len() {
        return end_session(state, &session.id, session.version, now, ErrorCode::FlowSessionExpired, secure).await;
    }
    let deps = state.flow_deps();
    let turn = match flow::handle(&deps, flow_config, &session.id, ip.as_deref(), flow_state, action).await {
        Ok(turn) => turn,
        Err(e) => return release(e.into()).await,
    };
    let update = FlowSessionUpdate {
        id: session.id.clone(),
        version: session.version,
        state: serde_json::to_value(&turn.state).map_err(|e| ApiError::Internal(e.to_string()))?,
        status: turn.status,
        last_seen_at: now,
    };
    if !state.store.commit_flow_session(&update, &turn.effects).await? {
        return Err(ApiError::flow(ErrorCode::ConcurrentAccess));
    }
    if turn.effects.iter().any(|e| matches!(e, Effect::Enqueue(_))) {
        state.outbox_ready.notify_one();
    }
    respond(state, &session.id, turn.outcome, turn.status, secure)
}

/// Ends a session that can no longer run and answers with `code` (403).
async fn end_session(
    state: &AppState,
    id: &str,
    version: i64,
    now: i64,
    code: ErrorCode,
    secure: bool,
) -> Result<Response, ApiError> {
    let update = FlowSessionUpdate {
        id: id.to_owned(),
        version,
        state: serde_json::json!({}),
        status: SessionStatus::Terminated,
        last_seen_at: now,
    };
    state.store.commit_flow_session(&update, &[]).await?;
    let error = ApiError::Flow { status: StatusCode::FORBIDDEN, next: None, errors: vec![FlowError::new(code)] };
    Ok(with_cookie(error.into_response(), &flow_cookie(None, secure)))
}

fn with_cookie(mut response: Response, cookie: &str) -> Response {
    if let Ok(v) = HeaderValue::from_str(cookie) {
        response.headers_mut().append(SET_COOKIE, v);
    }
    response
}

/// Encodes an outcome: 200 with the next step (none = done), 400 to retry, 403 when the flow ended.
pub(crate) fn respond(
    state: &AppState,
    id: &str,
    outcome: Outcome,
    status: SessionStatus,
    secure: bool,
) -> Result<Response, ApiError> {
    const ATTR: &str = "nextStep";
    let data_type = FlowKind::PublicSelfService.document_type();
    let response = match outcome {
        Outcome::Continue(next) => {
            let doc = documents::session(state.clock.now_ms(), data_type, id, next.map(|n| (ATTR, n.as_str())));
            (StatusCode::OK, axum::Json(doc)).into_response()
        }
        Outcome::Retry { next, errors } => {
            ApiError::Flow { status: StatusCode::BAD_REQUEST, next: Some((ATTR, next)), errors }.into_response()
        }
        Outcome::Unexpected => ApiError::flow(ErrorCode::UnexpectedCall).into_response(),
        Outcome::Terminated(errors) => {
            ApiError::Flow { status: StatusCode::FORBIDDEN, next: None, errors }.into_response()
        }
    };
    // A finished flow's cookie is useless: drop it.
    Ok(if status == SessionStatus::Active { response } else { with_cookie(response, &flow_cookie(None, secure)) })
}
