//! Public self-service flows (`/rest/public/self-service/…`): select a flow, then drive it call by call.
//! The flow session travels in an HttpOnly cookie; only its keyed hash is stored.

mod abort;
mod app;
mod email_otp_check;
mod email_otp_resend;
mod identify;
mod password_set;
mod select;

use axum::Router;
use axum::http::HeaderMap;
use axum::response::Response;
use axum::routing::{delete, post};
use gatehouse_core::flow::session::{FlowKind, FlowState};
use gatehouse_core::flow::{self, Action, ErrorCode};

use super::flow_session::{self, Held, Reply};
use crate::errors::ApiError;
use crate::state::AppState;

const KIND: FlowKind = FlowKind::PublicSelfService;

pub fn routes() -> Router<AppState> {
    let base = "/public/self-service";
    let mut r = Router::new()
        .route(&format!("{base}/flows/{{flow_id}}/select"), post(select::handler))
        .route(&format!("{base}/flows/{{flow_id}}/select/"), post(select::handler))
        .route(&format!("{base}/flow"), delete(abort::handler));
    // The product documents some paths with a trailing slash and some without; accept both spellings.
    for (path, handler) in [
        ("username/identify", post(identify::handler)),
        ("verification/email/otp/check", post(email_otp_check::handler)),
        ("verification/email/otp/resend", post(email_otp_resend::handler)),
        ("password/set", post(password_set::handler)),
        ("app-2fa/status/poll", post(app::poll)),
        ("app-2fa/offline/challenge", post(app::offline_challenge)),
        ("app-2fa/offline/check", post(app::offline_check)),
    ] {
        r = r.route(&format!("{base}/{path}"), handler.clone()).route(&format!("{base}/{path}/"), handler);
    }
    r
}

/// Runs one call on the public self-service flow named by the request's cookie.
pub(crate) async fn run(
    state: &AppState,
    headers: &HeaderMap,
    ip: Option<String>,
    action: Action,
) -> Result<Response, ApiError> {
    let (state, headers) = (state.clone(), headers.clone());
    flow_session::detached(async move {
        let held = match flow_session::acquire(&state, &headers, KIND).await {
            Ok(Some(held)) => held,
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
    .await
}

/// The flow's current state, read without holding the session (for long polls).
pub(crate) async fn peek(state: &AppState, headers: &HeaderMap) -> Option<FlowState> {
    match flow_session::acquire(state, headers, KIND).await {
        Ok(Some(held)) => {
            flow_session::release(state, &held).await;
            serde_json::from_value(held.record.state.clone()).ok()
        }
        _ => None,
    }
}

async fn handle(state: &AppState, held: &Held, ip: Option<String>, action: Action) -> Result<Response, ApiError> {
    let flow_config = state.config.public_self_service.flow(&held.record.flow_id);
    let flow_state = serde_json::from_value::<FlowState>(held.record.state.clone());
    let (Some(flow_config), Ok(flow_state)) = (flow_config, flow_state) else {
        // The flow was removed from the configuration (or changed shape) while this session ran.
        return Ok(flow_session::end(state, held, ErrorCode::FlowSessionExpired).await);
    };
    if flow_state.step > flow_config.steps.len() {
        return Ok(flow_session::end(state, held, ErrorCode::FlowSessionExpired).await);
    }
    let deps = state.flow_deps();
    let turn = flow::handle(&deps, flow_config, &held.record.id, ip.as_deref(), flow_state, action).await?;
    let new_state = serde_json::to_value(&turn.state).map_err(|e| ApiError::Internal(e.to_string()))?;
    flow_session::commit(state, held, new_state, turn.status, &turn.effects).await?;
    let reply = Reply {
        kind: KIND,
        id: &held.record.id,
        status: turn.status,
        secure: held.secure,
        lock_expiry: None,
        extra: turn.attributes,
    };
    Ok(flow_session::respond(state, reply, turn.outcome))
}
