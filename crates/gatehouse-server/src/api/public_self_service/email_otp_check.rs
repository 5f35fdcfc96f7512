//! `POST /rest/public/self-service/verification/email/otp/check/` — `{"otp": "12345678"}`.

use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::Response;
use gatehouse_core::flow::Action;
use serde::Deserialize;

use crate::errors::ApiError;
use crate::extract::{ClientIp, JsonBody};
use crate::state::AppState;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OtpCheckRequest {
    pub otp: String,
}

#[tracing::instrument(name = "pss.email_otp_check", skip_all)]
pub async fn handler(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    headers: HeaderMap,
    JsonBody(body): JsonBody<OtpCheckRequest>,
) -> Result<Response, ApiError> {
    if body.otp.chars().count() > 64 {
        return Err(ApiError::InvalidRequest { title: "otp is too long".into(), pointer: Some("/otp".into()) });
    }
    super::run(&state, &headers, ip, Action::CheckEmailOtp { otp: body.otp }).await
}
