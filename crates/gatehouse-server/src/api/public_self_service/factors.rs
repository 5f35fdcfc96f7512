//! Second factors approving a self-service flow, at the login's paths inside the self-service namespace
//! (Gatehouse's own): `POST /rest/public/self-service/otp/check/` `{"otp"}` (TOTP, `OTP_REQUIRED`),
//! `POST …/mtan/otp/check/` `{"otp"}` and `POST …/mtan/otp/resend/` (SMS code, `MTAN_OTP_REQUIRED`).

use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::Response;
use gatehouse_core::flow::Action;

use crate::errors::ApiError;
use crate::extract::{ClientIp, JsonBody, NoInput, OtpInput};
use crate::state::AppState;

#[tracing::instrument(name = "pss.totp_check", skip_all)]
pub async fn totp_check(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    headers: HeaderMap,
    JsonBody(body): JsonBody<OtpInput>,
) -> Result<Response, ApiError> {
    let otp = body.into_code()?;
    super::run(&state, &headers, ip, Action::CheckTotp { otp }).await
}

#[tracing::instrument(name = "pss.mtan_check", skip_all)]
pub async fn mtan_check(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    headers: HeaderMap,
    JsonBody(body): JsonBody<OtpInput>,
) -> Result<Response, ApiError> {
    let otp = body.into_code()?;
    super::run(&state, &headers, ip, Action::CheckMtan { otp }).await
}

#[tracing::instrument(name = "pss.mtan_resend", skip_all)]
pub async fn mtan_resend(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    headers: HeaderMap,
    JsonBody(_): JsonBody<NoInput>,
) -> Result<Response, ApiError> {
    super::run(&state, &headers, ip, Action::ResendMtan).await
}
