//! The authenticator factor in the login flow (next step `APP_2FA_POLLING_OR_OFFLINE_REQUIRED`, with the
//! `number` to match):
//! `POST /rest/public/authentication/app-2fa/status/poll/` waits (long poll) until the user decided on the
//! device, then answers as the decision says; `POST …/app-2fa/offline/challenge/` gives an offline challenge
//! (`offlineChallenge`, `qrCode`); `POST …/app-2fa/offline/check/` `{"otp": "12345678"}` checks the device's code.

use std::time::Duration;

use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::Response;
use gatehouse_core::flow::auth::{AuthAction, Stage};
use gatehouse_core::ports::ApprovalStatus;
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

/// Waits until the flow's approval request is decided or expired, or the poll time is up. Nothing is held
/// while waiting: other calls on the flow (going offline) stay possible.
async fn wait_for_decision(state: &AppState, headers: &HeaderMap) -> Result<(), ApiError> {
    let Some(flow) = super::peek(state, headers).await else { return Ok(()) };
    let Some(app) = flow.app.filter(|_| flow.stage == Stage::App) else { return Ok(()) };
    let deadline = tokio::time::Instant::now() + Duration::from_secs(state.config.authenticator.poll_wait_seconds);
    let mut events = state.store.approval_events();
    let wanted = format!("decided:{}", app.approval_id);
    loop {
        let approval = state.store.get_approval(&app.approval_id).await?;
        let settled =
            approval.is_none_or(|a| a.status != ApprovalStatus::Pending || state.clock.now_ms() >= a.expires_at);
        if settled || tokio::time::Instant::now() >= deadline {
            return Ok(());
        }
        // The database is the source of truth, whichever node the device talked to; the event says when to look.
        tokio::time::timeout_at(deadline, crate::api::approval_event(&mut events, &wanted)).await.ok();
    }
}

#[tracing::instrument(name = "auth.app_poll", skip_all)]
pub async fn poll(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    headers: HeaderMap,
    JsonBody(_): JsonBody<EmptyRequest>,
) -> Result<Response, ApiError> {
    wait_for_decision(&state, &headers).await?;
    super::run(&state, &headers, ip, AuthAction::PollApp, false).await
}

#[tracing::instrument(name = "auth.app_offline_challenge", skip_all)]
pub async fn offline_challenge(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    headers: HeaderMap,
    JsonBody(_): JsonBody<EmptyRequest>,
) -> Result<Response, ApiError> {
    super::run(&state, &headers, ip, AuthAction::OfflineChallenge, false).await
}

#[tracing::instrument(name = "auth.app_offline_check", skip_all)]
pub async fn offline_check(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    headers: HeaderMap,
    JsonBody(body): JsonBody<OtpRequest>,
) -> Result<Response, ApiError> {
    if body.otp.chars().count() > 64 {
        return Err(ApiError::InvalidRequest { title: "otp is too long".into(), pointer: Some("/otp".into()) });
    }
    super::run(&state, &headers, ip, AuthAction::OfflineCheck { otp: body.otp }, false).await
}
