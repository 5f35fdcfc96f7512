//! What every flow call does around the engine: find the flow session named by a cookie and hold it for this
//! one request (others get `CONCURRENT_ACCESS`), end it when expired, and write the outcome with its effects in
//! one transaction. The work runs in its own task, so a client hanging up cannot leave a session half-handled.

use axum::http::header::SET_COOKIE;
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use gatehouse_core::clock::Millis;
use gatehouse_core::flow::session::{FlowKind, FlowSessionRecord, SessionStatus};
use gatehouse_core::flow::{ErrorCode, FlowError, Outcome};
use gatehouse_core::ports::{Acquired, Effect, FlowSessionUpdate};

use crate::documents;
use crate::errors::ApiError;
use crate::extract::{cookie, set_cookie, wants_secure_cookie};
use crate::state::AppState;

/// How long one request may hold a flow session before another may take it over.
pub(crate) const LEASE_MS: i64 = 30_000;
/// Keyed-hash purpose of flow session cookies.
pub(crate) const TOKEN_PURPOSE: &str = "flow-session";

/// The cookie that carries flows of `kind`.
pub(crate) fn cookie_name(kind: FlowKind) -> &'static str {
    match kind {
        FlowKind::PublicSelfService => "gatehouse_flow",
        FlowKind::Authentication => "gatehouse_auth",
    }
}

/// A flow session held by this request.
pub(crate) struct Held {
    pub record: Box<FlowSessionRecord>,
    pub now: Millis,
    pub secure: bool,
}

/// Runs `f` in its own task.
pub(crate) async fn detached<F>(f: F) -> Result<Response, ApiError>
where
    F: Future<Output = Result<Response, ApiError>> + Send + 'static,
{
    tokio::spawn(f).await.map_err(|e| ApiError::Internal(format!("flow call task failed: {e}")))?
}

/// Takes the running flow session of `kind` named by the request's cookie. `Ok(None)`: there is none (no cookie,
/// unknown token, or the flow is over). `Err`: the answer to give (busy, expired).
pub(crate) async fn acquire(state: &AppState, headers: &HeaderMap, kind: FlowKind) -> Result<Option<Held>, Response> {
    let secure = wants_secure_cookie(&state.config.server, headers);
    let Some(token) = cookie(headers, cookie_name(kind)) else { return Ok(None) };
    let token_hash = state.key.hash_secret(TOKEN_PURPOSE, &token);
    let now = state.clock.now_ms();
    let record = match state.store.acquire_flow_session(&token_hash, now, now + LEASE_MS).await {
        Ok(Acquired::Session(s)) => s,
        Ok(Acquired::Busy) => return Err(ApiError::flow(ErrorCode::ConcurrentAccess).into_response()),
        Ok(Acquired::NotFound) => return Ok(None),
        Err(e) => return Err(ApiError::from(e).into_response()),
    };
    let held = Held { record, now, secure };
    if held.record.status != SessionStatus::Active || held.record.kind != kind {
        release(state, &held).await;
        return Ok(None);
    }
    let idle_ms = match kind {
        FlowKind::PublicSelfService => state.config.flow_sessions.idle_timeout_seconds,
        FlowKind::Authentication => state.config.flow_sessions.idle_timeout_seconds,
    };
    let idle_ms = i64::try_from(idle_ms * 1000).unwrap_or(i64::MAX);
    if now >= held.record.expires_at || now - held.record.last_seen_at > idle_ms {
        return Err(end(state, &held, ErrorCode::FlowSessionExpired).await);
    }
    Ok(Some(held))
}

/// Gives the session back unchanged (the call failed before changing anything).
pub(crate) async fn release(state: &AppState, held: &Held) {
    if let Err(e) = state.store.release_flow_session(&held.record.id, held.record.version).await {
        tracing::warn!(error = %e, "could not release flow session");
    }
}

/// Ends a session that can no longer run and answers with `code` (403), clearing the cookie.
pub(crate) async fn end(state: &AppState, held: &Held, code: ErrorCode) -> Response {
    let update = FlowSessionUpdate {
        id: held.record.id.clone(),
        version: held.record.version,
        state: serde_json::json!({}),
        status: SessionStatus::Terminated,
        last_seen_at: held.now,
    };
    if let Err(e) = state.store.commit_flow_session(&update, &[]).await {
        return ApiError::from(e).into_response();
    }
    let error = ApiError::Flow {
        status: StatusCode::FORBIDDEN,
        next: None,
        errors: vec![FlowError::new(code)],
        lock_expiry: None,
    };
    with_cookie(error.into_response(), &set_cookie(cookie_name(held.record.kind), None, held.secure))
}

/// Writes the new state and its effects; `CONCURRENT_ACCESS` if another request took over meanwhile.
pub(crate) async fn commit(
    state: &AppState,
    held: &Held,
    new_state: serde_json::Value,
    status: SessionStatus,
    effects: &[Effect],
) -> Result<(), ApiError> {
    let update = FlowSessionUpdate {
        id: held.record.id.clone(),
        version: held.record.version,
        state: new_state,
        status,
        last_seen_at: held.now,
    };
    if !state.store.commit_flow_session(&update, effects).await? {
        return Err(ApiError::flow(ErrorCode::ConcurrentAccess));
    }
    notify_outbox(state, effects);
    Ok(())
}

/// Wakes the delivery worker if the call queued a message.
pub(crate) fn notify_outbox(state: &AppState, effects: &[Effect]) {
    if effects.iter().any(|e| matches!(e, Effect::Enqueue(_))) {
        state.outbox_ready.notify_one();
    }
}

pub(crate) fn with_cookie(mut response: Response, cookie: &str) -> Response {
    if let Ok(v) = HeaderValue::from_str(cookie) {
        response.headers_mut().append(SET_COOKIE, v);
    }
    response
}

/// Everything besides the outcome that shapes a flow call's answer.
pub(crate) struct Reply<'a> {
    pub kind: FlowKind,
    /// The flow session's public id (`data.id`).
    pub id: &'a str,
    pub status: SessionStatus,
    pub secure: bool,
    /// `meta.temporaryLockExpiry`.
    pub lock_expiry: Option<Millis>,
    /// Extra `data.attributes`.
    pub extra: serde_json::Map<String, serde_json::Value>,
}

/// Encodes an outcome: 200 with the next step (none = done), 400 to retry, 403 when the flow ended. A finished
/// flow's cookie is cleared.
pub(crate) fn respond(state: &AppState, reply: Reply<'_>, outcome: Outcome) -> Response {
    let Reply { kind, id, status, secure, lock_expiry, extra } = reply;
    let attr = kind.next_step_attribute();
    let response = match outcome {
        Outcome::Continue(next) => {
            let doc = documents::session(
                state.clock.now_ms(),
                kind.document_type(),
                id,
                next.map(|n| (attr, n.as_str())),
                extra,
            );
            (StatusCode::OK, axum::Json(doc)).into_response()
        }
        Outcome::Retry { next, errors } => {
            ApiError::Flow { status: StatusCode::BAD_REQUEST, next: Some((attr, next)), errors, lock_expiry }
                .into_response()
        }
        Outcome::Unexpected => ApiError::flow(ErrorCode::UnexpectedCall).into_response(),
        Outcome::Terminated(errors) => {
            ApiError::Flow { status: StatusCode::FORBIDDEN, next: None, errors, lock_expiry }.into_response()
        }
    };
    if status == SessionStatus::Active {
        response
    } else {
        with_cookie(response, &set_cookie(cookie_name(kind), None, secure))
    }
}
