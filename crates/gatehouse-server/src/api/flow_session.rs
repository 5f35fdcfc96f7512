//! The one way a route runs a flow call, whatever the flow's kind: find the flow session named by the kind's
//! cookie and hold it for this one request (others get `CONCURRENT_ACCESS`), end it when expired, hand the call
//! to the engine, and write the outcome with its effects in one transaction. Like every request, the call runs to
//! its end when its client hangs up (see `completion`), so no session is left half-handled. Routes only decode a
//! request into an [`Action`] and call [`run`] (or [`start`] for a flow's first call).

use axum::http::header::SET_COOKIE;
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use gatehouse_core::clock::Millis;
use gatehouse_core::flow::session::{FlowKind, FlowSessionRecord, FlowState, NewFlowSession, SessionStatus};
use gatehouse_core::flow::{self, Action, ErrorCode, FlowError, Outcome, Turn};
use gatehouse_core::ports::{Acquired, Effect, FlowSessionUpdate};
use gatehouse_core::random::{random_decimal_id, random_id, random_token};

use super::limits;
use super::pending_flow::PendingFlow;
use crate::documents;
use crate::errors::ApiError;
use crate::extract::{cookie, set_cookie, wants_secure_cookie};
use crate::messaging::hand_off::write_queuing;
use crate::state::AppState;

/// The cookie of the authenticated session.
pub const SESSION_COOKIE: &str = "gatehouse_session";

/// How long one request may hold a flow session before another may take it over.
pub(crate) const LEASE_MS: i64 = 30_000;
/// Keyed-hash purpose of flow session cookies.
pub(crate) const TOKEN_PURPOSE: &str = "flow-session";

/// The cookie that carries flows of `kind`.
pub(crate) fn cookie_name(kind: FlowKind) -> &'static str {
    match kind {
        FlowKind::PublicSelfService => "gatehouse_flow",
        FlowKind::Authentication => "gatehouse_auth",
        FlowKind::SelfRegistration => "gatehouse_registration",
        FlowKind::ProtectedSelfService => "gatehouse_protected_flow",
        FlowKind::TransactionApproval => "gatehouse_approval",
    }
}

/// A flow session held by this request.
pub(crate) struct Held {
    pub record: Box<FlowSessionRecord>,
    pub now: Millis,
    pub secure: bool,
    /// A flow that lives in its cookie so far (see [`PendingFlow`]): the start's audit events, to be written with
    /// the row this call creates.
    pub pending: Option<Vec<gatehouse_core::audit::AuditEvent>>,
}

/// Takes the running flow session of `kind` named by the request's cookie. `Ok(None)`: there is none (no cookie,
/// unknown token, or the flow is over). `Err`: the answer to give (busy, expired).
pub(crate) async fn acquire(state: &AppState, headers: &HeaderMap, kind: FlowKind) -> Result<Option<Held>, Response> {
    let secure = wants_secure_cookie(&state.config.server, headers);
    let Some(token) = cookie(headers, cookie_name(kind), secure) else { return Ok(None) };
    let now = state.clock.now_ms();
    let held = match PendingFlow::open(state, &token) {
        Some(Some(p)) => {
            let record = FlowSessionRecord {
                id: p.id,
                kind: p.kind,
                flow_id: p.flow_id,
                state: serde_json::to_value(&p.state).map_err(|e| ApiError::Internal(e.to_string()).into_response())?,
                status: SessionStatus::Active,
                version: 0,
                created_at: p.created_at,
                last_seen_at: p.created_at,
                expires_at: p.expires_at,
            };
            Held { record: Box::new(record), now, secure, pending: Some(p.audit) }
        }
        Some(None) => return Ok(None),
        None => {
            let token_hash = state.key.hash_secret(TOKEN_PURPOSE, &token);
            let record = match state.store.acquire_flow_session(&token_hash, now, now + LEASE_MS).await {
                Ok(Acquired::Session(s)) => s,
                Ok(Acquired::Busy) => return Err(ApiError::flow(ErrorCode::ConcurrentAccess).into_response()),
                Ok(Acquired::NotFound) => return Ok(None),
                Err(e) => return Err(ApiError::from(e).into_response()),
            };
            Held { record, now, secure, pending: None }
        }
    };
    if held.record.status != SessionStatus::Active || held.record.kind != kind {
        release(state, &held).await;
        return Ok(None);
    }
    let idle_ms = i64::try_from(state.config.flow_sessions.idle_timeout_seconds * 1000).unwrap_or(i64::MAX);
    if now >= held.record.expires_at || now - held.record.last_seen_at > idle_ms {
        return Err(end(state, &held, ErrorCode::FlowSessionExpired).await);
    }
    Ok(Some(held))
}

/// Gives the session back unchanged (the call failed before changing anything).
pub(crate) async fn release(state: &AppState, held: &Held) {
    if held.pending.is_some() {
        return;
    }
    if let Err(e) = state.store.release_flow_session(&held.record.id, held.record.version).await {
        tracing::warn!(error = %e, "could not release flow session");
    }
}

/// Ends a session that can no longer run and answers with `code` (403), clearing the cookie.
pub(crate) async fn end(state: &AppState, held: &Held, code: ErrorCode) -> Response {
    // A pending flow has no row to end: its cookie is cleared, and a replay ends the same way.
    if held.pending.is_none() {
        let update = FlowSessionUpdate {
            id: held.record.id.clone(),
            version: held.record.version,
            state: serde_json::json!({}),
            status: SessionStatus::Terminated,
            last_seen_at: held.now,
            token_hash: None,
        };
        if let Err(e) = state.store.commit_flow_session(&update, &[]).await {
            return ApiError::from(e).into_response();
        }
    }
    let error = ApiError::Flow {
        status: StatusCode::FORBIDDEN,
        next: None,
        errors: vec![FlowError::new(code)],
        lock_expiry: None,
    };
    with_cookie(error.into_response(), &set_cookie(cookie_name(held.record.kind), None, held.secure))
}

/// Writes the new state and its effects; `CONCURRENT_ACCESS` if another request took over meanwhile. A pending
/// flow's row is created now, with the start's audit events (`token_hash` is then required: the sealed cookie
/// is replaced by a stored flow's).
pub(crate) async fn commit(
    state: &AppState,
    held: &Held,
    new_state: serde_json::Value,
    status: SessionStatus,
    effects: &[Effect],
    token_hash: Option<String>,
) -> Result<(), ApiError> {
    if let Some(started) = &held.pending {
        let token_hash =
            token_hash.ok_or_else(|| ApiError::Internal("a pending flow's first row needs a cookie".into()))?;
        let session = NewFlowSession {
            id: held.record.id.clone(),
            token_hash,
            kind: held.record.kind,
            flow_id: held.record.flow_id.clone(),
            state: new_state,
            status,
            created_at: held.record.created_at,
            last_seen_at: held.now,
            expires_at: held.record.expires_at,
        };
        let all: Vec<Effect> = started.iter().cloned().map(Effect::Audit).chain(effects.iter().cloned()).collect();
        if !write_queuing(state, &all, async |all| state.store.create_flow_session(&session, all).await).await? {
            return Err(ApiError::flow(ErrorCode::ConcurrentAccess));
        }
        return Ok(());
    }
    let update = FlowSessionUpdate {
        id: held.record.id.clone(),
        version: held.record.version,
        state: new_state,
        status,
        last_seen_at: held.now,
        token_hash,
    };
    if !write_queuing(state, effects, async |effects| state.store.commit_flow_session(&update, effects).await).await? {
        return Err(ApiError::flow(ErrorCode::ConcurrentAccess));
    }
    Ok(())
}

pub(crate) fn with_cookie(mut response: Response, cookie: &str) -> Response {
    if let Ok(v) = HeaderValue::from_str(cookie) {
        response.headers_mut().append(SET_COOKIE, v);
    }
    response
}

/// Runs one call on the running flow of `kind` named by the request's cookie. Without one, a call that can open
/// a login (password check, username) starts the default application's flow; any other is `UNEXPECTED_CALL`.
pub(crate) async fn run(
    state: &AppState,
    headers: &HeaderMap,
    ip: Option<String>,
    kind: FlowKind,
    action: Action,
) -> Result<Response, ApiError> {
    // In enumeration-protection mode every failed password check takes the same, fixed time.
    let fixed_time = (kind == FlowKind::Authentication
        && matches!(action, Action::CheckPassword { .. })
        && state.config.authentication.enumeration_protection)
        .then(|| std::time::Duration::from_millis(state.config.authentication.response_time_ms));
    let started = tokio::time::Instant::now();
    if limits::is_limited(&action) {
        limits::client(state, ip.as_deref()).await?;
        if let Action::Identify { username } | Action::CheckPassword { username: Some(username), .. } = &action {
            limits::account(state, username).await?;
        }
    }
    let (response, flow_id) = 'called: {
        let held = match acquire(state, headers, kind).await {
            Ok(Some(held)) => held,
            Ok(None) => {
                break 'called match implicit_flow(state, kind, &action) {
                    Some((flow_id, app)) => {
                        let first = Some(action);
                        let started = start(state, headers, ip, kind, &flow_id, app.as_deref(), first).await;
                        (started.map(|s| s.response), Some(flow_id))
                    }
                    None => (Err(ApiError::flow(ErrorCode::UnexpectedCall)), None),
                };
            }
            Err(response) => break 'called (Ok(response), None),
        };
        let flow_id = Some(held.record.flow_id.clone());
        match handle(state, &held, ip, action).await {
            Ok(response) => (Ok(response), flow_id),
            Err(e) => {
                release(state, &held).await;
                (Err(e), flow_id)
            }
        }
    };
    let failed = response.as_ref().map_or(true, |r| !r.status().is_success());
    // A public self-service call on an enumeration-safe flow (no restriction feedback) takes at least the
    // configured time, whatever happened; in login, failed password checks take the fixed time.
    // Registration flows in stealth mode likewise: a taken address must not answer faster or slower.
    let enumeration_safe = match (kind, flow_id.as_deref()) {
        (FlowKind::PublicSelfService, Some(id)) => {
            state.config.public_self_service.flow(id).is_some_and(|f| !f.restrictions.any_feedback())
        }
        (FlowKind::SelfRegistration, Some(id)) => {
            state.config.self_registration.flow(id).is_some_and(|f| f.stealth_mode)
        }
        _ => false,
    };
    let padded = (enumeration_safe && state.config.public_self_service.response_time_ms > 0)
        .then(|| std::time::Duration::from_millis(state.config.public_self_service.response_time_ms));
    let wait = match (fixed_time, padded) {
        (Some(fixed), _) if failed => Some(fixed),
        (_, Some(padded)) => Some(padded),
        _ => None,
    };
    let Some(wait) = wait else { return response };
    tokio::time::sleep_until(started + wait).await;
    // Stamped after the wait: a timestamp from when the work ended would tell how long it took.
    match response {
        Ok(r) => Ok(restamp(r, state.clock.now_ms()).await),
        Err(e) => Ok(restamp(e.into_response(), state.clock.now_ms()).await),
    }
}

/// The answer with `meta.timestamp` set to `now`.
async fn restamp(response: Response, now: Millis) -> Response {
    let (mut parts, body) = response.into_parts();
    let Ok(bytes) = axum::body::to_bytes(body, 1 << 20).await else {
        return ApiError::Internal("an answer could not be read back".into()).into_response();
    };
    let Ok(mut doc) = serde_json::from_slice::<serde_json::Value>(&bytes) else {
        return Response::from_parts(parts, axum::body::Body::from(bytes));
    };
    if let Some(meta) = doc.get_mut("meta").and_then(serde_json::Value::as_object_mut) {
        meta.insert("timestamp".into(), serde_json::json!(gatehouse_core::clock::format_timestamp(now)));
    }
    parts.headers.remove(axum::http::header::CONTENT_LENGTH);
    Response::from_parts(parts, axum::body::Body::from(serde_json::to_vec(&doc).unwrap_or_default()))
}

/// The flow a call starts when none runs, and its application: a login's first call (password check,
/// username) starts the default application's flow, as calling the first step does in the product; `identify`
/// starts the legacy reset entry flow, for clients of the old reset API that never `select`.
fn implicit_flow(state: &AppState, kind: FlowKind, action: &Action) -> Option<(String, Option<String>)> {
    match (kind, action) {
        (FlowKind::Authentication, Action::CheckPassword { .. } | Action::Identify { .. }) => {
            let auth = &state.config.authentication;
            let app = auth.application(&auth.default_application)?;
            Some((app.flow.clone(), Some(app.id.clone())))
        }
        (FlowKind::PublicSelfService, Action::Identify { .. }) => {
            state.config.public_self_service.legacy_reset_flow().map(|f| (f.id.clone(), None))
        }
        (FlowKind::SelfRegistration, Action::RegisterData { .. }) => {
            state.config.self_registration.default_flow.clone().map(|id| (id, None))
        }
        _ => None,
    }
}

/// A flow just started: its answer (with the new flow cookie) and what the engine made of the first call.
pub(crate) struct Started {
    pub response: Response,
    pub outcome: Outcome,
}

/// Starts flow `flow_id` of `kind` with a new session and cookie, optionally handling its first call at once.
pub(crate) async fn start(
    state: &AppState,
    headers: &HeaderMap,
    ip: Option<String>,
    kind: FlowKind,
    flow_id: &str,
    application: Option<&str>,
    first: Option<Action>,
) -> Result<Started, ApiError> {
    let def = state.config.flow(kind, flow_id).ok_or_else(|| ApiError::FlowNotFound(flow_id.to_owned()))?;
    // Self-service flow ids are decimal, as in the product's examples; login flow ids are opaque.
    let id = match kind {
        FlowKind::Authentication => random_id(state.random.as_ref()),
        _ => random_decimal_id(state.random.as_ref()),
    };
    let deps = state.flow_deps();
    let implicit = first.is_some();
    let turn = flow::start(&deps, def, &id, ip.as_deref(), application, first).await?;
    if implicit && turn.outcome == Outcome::Unexpected {
        // A call that does not fit the flow it would start leaves no session behind.
        return Err(ApiError::flow(ErrorCode::UnexpectedCall));
    }
    let lifetime = state.config.flow_sessions.max_lifetime_seconds;
    let now = state.clock.now_ms();
    let expires_at = now.saturating_add(i64::try_from(lifetime.saturating_mul(1000)).unwrap_or(i64::MAX));
    let pending = if implicit { None } else { PendingFlow::from_start(kind, flow_id, &id, &turn, now, expires_at) };
    let token = match pending.as_ref().and_then(|p| p.seal(state)) {
        Some(sealed) => sealed,
        None => {
            let token = random_token(state.random.as_ref());
            store_new_session(state, kind, flow_id, &id, &token, &turn, lifetime).await?;
            token
        }
    };
    count_flow(kind, flow_id, SessionStatus::Active);
    if turn.status != SessionStatus::Active {
        count_flow(kind, flow_id, turn.status);
    }
    let secure = wants_secure_cookie(&state.config.server, headers);
    let outcome = turn.outcome.clone();
    let active = turn.status == SessionStatus::Active;
    let seeded = seed_next_login(state, ip.as_deref(), turn.next_auth.as_ref(), secure).await?;
    let response = finish(state, kind, &id, turn, secure);
    let response = match seeded {
        Some(cookie) => with_cookie(response, &cookie),
        None => response,
    };
    let response =
        if active { with_cookie(response, &set_cookie(cookie_name(kind), Some(&token), secure)) } else { response };
    Ok(Started { response, outcome })
}

/// Stores a just-started flow's session (the cookie token only as a keyed hash) with the turn's effects.
async fn store_new_session(
    state: &AppState,
    kind: FlowKind,
    flow_id: &str,
    id: &str,
    token: &str,
    turn: &Turn,
    lifetime_seconds: u64,
) -> Result<(), ApiError> {
    let now = state.clock.now_ms();
    let lifetime = i64::try_from(lifetime_seconds.saturating_mul(1000)).unwrap_or(i64::MAX);
    let session = NewFlowSession {
        id: id.to_owned(),
        token_hash: state.key.hash_secret(TOKEN_PURPOSE, token),
        kind,
        flow_id: flow_id.to_owned(),
        state: serde_json::to_value(&turn.state).map_err(|e| ApiError::Internal(e.to_string()))?,
        status: turn.status,
        created_at: now,
        last_seen_at: now,
        expires_at: now.saturating_add(lifetime),
    };
    if !write_queuing(state, &turn.effects, async |effects| state.store.create_flow_session(&session, effects).await)
        .await?
    {
        // Ids are random: a clash is a broken random source, not a race.
        return Err(ApiError::Internal("a new flow session's id was taken".into()));
    }
    Ok(())
}

async fn handle(state: &AppState, held: &Held, ip: Option<String>, action: Action) -> Result<Response, ApiError> {
    let kind = held.record.kind;
    let def = state.config.flow(kind, &held.record.flow_id);
    let flow_state = serde_json::from_value::<FlowState>(held.record.state.clone());
    let (Some(def), Ok(flow_state)) = (def, flow_state) else {
        // The flow was removed from the configuration (or changed shape) while this session ran.
        return Ok(end(state, held, ErrorCode::FlowSessionExpired).await);
    };
    if !flow::fits(def, &flow_state) {
        return Ok(end(state, held, ErrorCode::FlowSessionExpired).await);
    }
    // Answers about the flow's account count on its name (identify and password checks counted it already).
    if limits::is_limited(&action)
        && !matches!(action, Action::Identify { .. } | Action::CheckPassword { username: Some(_), .. })
        && let Some(subject) = &flow_state.subject
    {
        limits::account(state, &subject.login).await?;
    }
    let deps = state.flow_deps();
    let describe = action == Action::Describe;
    let turn = flow::handle(&deps, def, &held.record.id, ip.as_deref(), flow_state, action).await?;
    // A pending flow that was only looked at, or called out of turn, stays in its cookie: nothing to write.
    if held.pending.is_some()
        && (describe || turn.outcome == Outcome::Unexpected)
        && turn.status == SessionStatus::Active
    {
        return Ok(finish(state, kind, &held.record.id, turn, held.secure));
    }
    let new_state = serde_json::to_value(&turn.state).map_err(|e| ApiError::Internal(e.to_string()))?;
    // A call that identified or authenticated the user renews the cookie: a flow cookie planted in the
    // victim's browser before is worthless afterwards.
    // A pending flow's first row always gets a new cookie token (its sealed cookie names no row); when the flow
    // ended with this call, the token reaches nobody (the cookie is cleared).
    let active = turn.status == SessionStatus::Active;
    let renewed = (held.pending.is_some() || (turn.renew_token && active)).then(|| random_token(state.random.as_ref()));
    let token_hash = renewed.as_ref().map(|t| state.key.hash_secret(TOKEN_PURPOSE, t));
    commit(state, held, new_state, turn.status, &turn.effects, token_hash).await?;
    if !active {
        count_flow(kind, &held.record.flow_id, turn.status);
    }
    let seeded = seed_next_login(state, ip.as_deref(), turn.next_auth.as_ref(), held.secure).await?;
    let mut response = finish(state, kind, &held.record.id, turn, held.secure);
    if let Some(token) = renewed.filter(|_| active) {
        response = with_cookie(response, &set_cookie(cookie_name(kind), Some(&token), held.secure));
    }
    Ok(match seeded {
        Some(cookie) => with_cookie(response, &cookie),
        None => response,
    })
}

/// A completed self-service flow configured to initialize the next login starts that login now, knowing the
/// user; the answer carries its flow cookie (`Set-Cookie` value returned).
async fn seed_next_login(
    state: &AppState,
    ip: Option<&str>,
    seed: Option<&flow::Seed>,
    secure: bool,
) -> Result<Option<String>, ApiError> {
    let Some(seed) = seed else { return Ok(None) };
    let auth = &state.config.authentication;
    let Some(def) =
        auth.application(&seed.application).and_then(|a| state.config.flow(FlowKind::Authentication, &a.flow))
    else {
        return Ok(None);
    };
    let token = random_token(state.random.as_ref());
    let id = random_id(state.random.as_ref());
    let deps = state.flow_deps();
    let turn = flow::start_seeded(&deps, def, &id, ip, seed).await?;
    store_new_session(state, FlowKind::Authentication, def.id, &id, &token, &turn, seed.validity_seconds).await?;
    Ok(match (turn.status, &turn.session_token) {
        (SessionStatus::Active, _) => Some(set_cookie(cookie_name(FlowKind::Authentication), Some(&token), secure)),
        // Nothing was left to ask (`skip = password`, no second factor): the user is logged in.
        (SessionStatus::Completed, Some(session)) => Some(set_cookie(SESSION_COOKIE, Some(session), secure)),
        _ => None,
    })
}

/// The running flow's state of `kind`, read without holding the session (for long polls).
pub(crate) async fn peek(state: &AppState, headers: &HeaderMap, kind: FlowKind) -> Option<FlowState> {
    match acquire(state, headers, kind).await {
        Ok(Some(held)) => {
            release(state, &held).await;
            serde_json::from_value(held.record.state.clone()).ok()
        }
        _ => None,
    }
}

/// Encodes a turn: 200 with the next step (none = done), 400 to retry, 403 when the flow ended. A finished
/// flow's cookie is cleared; a completed login hands out the authenticated session's cookie.
pub(crate) fn finish(state: &AppState, kind: FlowKind, id: &str, turn: Turn, secure: bool) -> Response {
    let Turn { outcome, status, attributes, session_token, lock_expiry, .. } = turn;
    let attr = kind.next_step_attribute();
    let done = matches!(outcome, Outcome::Continue(None));
    let response = match outcome {
        Outcome::Continue(next) => {
            let doc = documents::session(
                state.clock.now_ms(),
                kind.document_type(),
                id,
                next.map(|n| (attr, n.as_str())),
                attributes,
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
    let response = if status == SessionStatus::Active {
        response
    } else {
        with_cookie(response, &set_cookie(cookie_name(kind), None, secure))
    };
    match session_token {
        Some(token) if done => with_cookie(response, &set_cookie(SESSION_COOKIE, Some(&token), secure)),
        _ => response,
    }
}

/// Counts flows as they start (`Active`) and end (`Completed`, `Terminated`), per kind and flow id
/// (`gatehouse_flows_total`).
fn count_flow(kind: FlowKind, flow_id: &str, status: SessionStatus) {
    let result = match status {
        SessionStatus::Active => "started",
        SessionStatus::Completed => "completed",
        SessionStatus::Terminated => "failed",
    };
    let labels = [("kind", kind.as_str().to_owned()), ("flow", flow_id.to_owned()), ("result", result.to_owned())];
    metrics::counter!("gatehouse_flows_total", &labels).increment(1);
}
