//! `POST /rest/public/authentication/mtan/otp/check` — `{"otp": "123456"}`.

use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::Response;
use gatehouse_core::flow::Action;

use crate::errors::ApiError;
use crate::extract::{ClientIp, JsonBody, OtpInput};
use crate::state::AppState;

#[tracing::instrument(name = "auth.mtan_check", skip_all)]
pub async fn handler(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    headers: HeaderMap,
    JsonBody(body): JsonBody<OtpInput>,
) -> Result<Response, ApiError> {
    let otp = body.into_code()?;
    super::run(&state, &headers, ip, Action::CheckMtan { otp }).await
}
