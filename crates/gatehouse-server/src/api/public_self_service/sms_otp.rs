//! The SMS identity verification step (`SMS_OTP_REQUIRED`; Gatehouse's own paths, named like the email
//! step's): `POST /rest/public/self-service/verification/sms/otp/check/` `{"otp": "12345678"}` and
//! `POST …/verification/sms/otp/resend/` (a new code; the old one stops working).

use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::Response;
use gatehouse_core::flow::Action;

use crate::errors::ApiError;
use crate::extract::{ClientIp, JsonBody, NoInput, OtpInput};
use crate::state::AppState;

#[tracing::instrument(name = "pss.sms_otp_check", skip_all)]
pub async fn check(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    headers: HeaderMap,
    JsonBody(body): JsonBody<OtpInput>,
) -> Result<Response, ApiError> {
    let otp = body.into_code()?;
    super::run(&state, &headers, ip, Action::CheckSmsOtp { otp }).await
}

#[tracing::instrument(name = "pss.sms_otp_resend", skip_all)]
pub async fn resend(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    headers: HeaderMap,
    JsonBody(_): JsonBody<NoInput>,
) -> Result<Response, ApiError> {
    super::run(&state, &headers, ip, Action::ResendSmsOtp).await
}
