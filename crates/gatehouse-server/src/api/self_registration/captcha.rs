//! `POST /rest/public/user-self-registration/registration/captcha/` — a fresh challenge (`captcha`) for the
//! current data step, e.g. after one expired or was refused (Gatehouse's own path).

use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::Response;
use gatehouse_core::flow::Action;

use crate::errors::ApiError;
use crate::extract::{ClientIp, JsonBody, NoInput};
use crate::state::AppState;

#[tracing::instrument(name = "registration.captcha", skip_all)]
pub async fn handler(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    headers: HeaderMap,
    JsonBody(_): JsonBody<NoInput>,
) -> Result<Response, ApiError> {
    super::run(&state, &headers, ip, Action::NewCaptcha).await
}
