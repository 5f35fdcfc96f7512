//! `POST /rest/public/self-service/verification/email/otp/check/` — `{"otp": "12345678"}`.

use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::Response;
use gatehouse_core::flow::Action;

use crate::errors::ApiError;
use crate::extract::{ClientIp, JsonBody, OtpInput};
use crate::state::AppState;

#[tracing::instrument(name = "pss.email_otp_check", skip_all)]
pub async fn handler(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    headers: HeaderMap,
    JsonBody(body): JsonBody<OtpInput>,
) -> Result<Response, ApiError> {
    let otp = body.into_code()?;
    super::run(&state, &headers, ip, Action::CheckEmailOtp { otp }).await
}
