//! The channel verification steps: `POST …/verification/email/otp/check/` `{"otp": "…"}` and
//! `…/verification/email/otp/resend/` (`EMAIL_VERIFICATION_REQUIRED`), and the same under
//! `…/verification/phone/…` (`PHONE_NUMBER_VERIFICATION_REQUIRED`). A new code replaces the old one.

use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::Response;
use gatehouse_core::flow::Action;

use crate::errors::ApiError;
use crate::extract::{ClientIp, JsonBody, NoInput, OtpInput};
use crate::state::AppState;

#[tracing::instrument(name = "registration.email_otp_check", skip_all)]
pub async fn email_check(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    headers: HeaderMap,
    JsonBody(body): JsonBody<OtpInput>,
) -> Result<Response, ApiError> {
    let otp = body.into_code()?;
    super::run(&state, &headers, ip, Action::CheckEmailOtp { otp }).await
}

#[tracing::instrument(name = "registration.email_otp_resend", skip_all)]
pub async fn email_resend(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    headers: HeaderMap,
    JsonBody(_): JsonBody<NoInput>,
) -> Result<Response, ApiError> {
    super::run(&state, &headers, ip, Action::ResendEmailOtp).await
}

#[tracing::instrument(name = "registration.phone_otp_check", skip_all)]
pub async fn phone_check(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    headers: HeaderMap,
    JsonBody(body): JsonBody<OtpInput>,
) -> Result<Response, ApiError> {
    let otp = body.into_code()?;
    super::run(&state, &headers, ip, Action::CheckSmsOtp { otp }).await
}

#[tracing::instrument(name = "registration.phone_otp_resend", skip_all)]
pub async fn phone_resend(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    headers: HeaderMap,
    JsonBody(_): JsonBody<NoInput>,
) -> Result<Response, ApiError> {
    super::run(&state, &headers, ip, Action::ResendSmsOtp).await
}
