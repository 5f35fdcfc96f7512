//! The authenticator approval step of self-service flows (Gatehouse's own paths, named like the login's):
//! `POST /rest/public/self-service/app-2fa/status/poll/` (long poll), `…/app-2fa/offline/challenge/`,
//! `…/app-2fa/offline/check/` `{"otp": "12345678"}`.

use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::Response;
use gatehouse_core::flow::Action;
use gatehouse_core::flow::session::Scratch;
use serde::Deserialize;

use crate::errors::ApiError;
use crate::extract::{ClientIp, JsonBody};
use crate::state::AppState;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EmptyRequest {}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OtpRequest {
    pub otp: String,
}

/// The long poll waits for the step's request, holding nothing. A request nobody can answer (stealth mode)
/// waits the same way.
async fn wait_for_decision(state: &AppState, headers: &HeaderMap) -> Result<(), ApiError> {
    let Some(flow) = super::peek(state, headers).await else { return Ok(()) };
    let Scratch::App(challenge) = flow.scratch else { return Ok(()) };
    crate::api::wait_for_approval(state, challenge.approval_id.as_deref(), Some(challenge.expires_at)).await
}

#[tracing::instrument(name = "pss.app_poll", skip_all)]
pub async fn poll(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    headers: HeaderMap,
    JsonBody(_): JsonBody<EmptyRequest>,
) -> Result<Response, ApiError> {
    wait_for_decision(&state, &headers).await?;
    super::run(&state, &headers, ip, Action::PollApp).await
}

#[tracing::instrument(name = "pss.app_offline_challenge", skip_all)]
pub async fn offline_challenge(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    headers: HeaderMap,
    JsonBody(_): JsonBody<EmptyRequest>,
) -> Result<Response, ApiError> {
    super::run(&state, &headers, ip, Action::OfflineChallenge).await
}

#[tracing::instrument(name = "pss.app_offline_check", skip_all)]
pub async fn offline_check(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    headers: HeaderMap,
    JsonBody(body): JsonBody<OtpRequest>,
) -> Result<Response, ApiError> {
    if body.otp.chars().count() > 64 {
        return Err(ApiError::InvalidRequest { title: "otp is too long".into(), pointer: Some("/otp".into()) });
    }
    super::run(&state, &headers, ip, Action::OfflineCheck { otp: body.otp }).await
}
