//! The authenticator approval step of self-service flows (Gatehouse's own paths, named like the login's):
//! `POST /rest/public/self-service/app-2fa/status/poll/` (long poll), `…/app-2fa/offline/challenge/`,
//! `…/app-2fa/offline/check/` `{"otp": "12345678"}`.

use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::Response;
use gatehouse_core::flow::Action;

use crate::errors::ApiError;
use crate::extract::{ClientIp, JsonBody, NoInput, OtpInput};
use crate::state::AppState;

#[tracing::instrument(name = "pss.app_poll", skip_all)]
pub async fn poll(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    headers: HeaderMap,
    JsonBody(_): JsonBody<NoInput>,
) -> Result<Response, ApiError> {
    crate::api::wait_for_decision(&state, &headers, super::KIND).await?;
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
