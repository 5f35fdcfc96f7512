//! The authenticator approval step of self-service flows (Gatehouse's own paths, named like the login's):
//! `POST /rest/public/self-service/app-2fa/status/poll/` (long poll), `…/app-2fa/offline/challenge/`,
//! `…/app-2fa/offline/check/` `{"otp": "12345678"}`.

use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::Response;
use gatehouse_core::flow::Action;
use gatehouse_core::flow::session::Scratch;

use crate::errors::ApiError;
use crate::extract::{ClientIp, JsonBody, NoInput, OtpInput};
use crate::state::AppState;

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
    JsonBody(_): JsonBody<NoInput>,
) -> Result<Response, ApiError> {
    wait_for_decision(&state, &headers).await?;
    super::run(&state, &headers, ip, Action::PollApp).await
}

#[tracing::instrument(name = "pss.app_offline_challenge", skip_all)]
pub async fn offline_challenge(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    headers: HeaderMap,
    JsonBody(_): JsonBody<NoInput>,
) -> Result<Response, ApiError> {
    super::run(&state, &headers, ip, Action::OfflineChallenge).await
}

#[tracing::instrument(name = "pss.app_offline_check", skip_all)]
pub async fn offline_check(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    headers: HeaderMap,
    JsonBody(body): JsonBody<OtpInput>,
) -> Result<Response, ApiError> {
    let otp = body.into_code()?;
    super::run(&state, &headers, ip, Action::OfflineCheck { otp }).await
}
