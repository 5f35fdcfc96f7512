//! `POST /rest/public/authentication/otp/check/` — `{"otp": "123456"}`.

use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::Response;
use gatehouse_core::flow::auth::AuthAction;
use serde::Deserialize;

use crate::errors::ApiError;
use crate::extract::{ClientIp, JsonBody};
use crate::state::AppState;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OtpRequest {
    pub otp: String,
}

#[tracing::instrument(name = "auth.otp_check", skip_all)]
pub async fn handler(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    headers: HeaderMap,
    JsonBody(body): JsonBody<OtpRequest>,
) -> Result<Response, ApiError> {
    if body.otp.chars().count() > 64 {
        return Err(ApiError::InvalidRequest { title: "otp is too long".into(), pointer: Some("/otp".into()) });
    }
    super::run(&state, &headers, ip, AuthAction::CheckTotp { otp: body.otp }, false).await
}
