//! `POST /rest/public/user-self-registration/app-2fa/activation/poll/` (`APP_2FA_ACTIVATION_REQUIRED`): the
//! flow moves on once the authenticator enrolled in this registration has activated (Gatehouse's own path).

use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::Response;
use gatehouse_core::flow::Action;

use crate::errors::ApiError;
use crate::extract::{ClientIp, JsonBody, NoInput};
use crate::state::AppState;

#[tracing::instrument(name = "registration.activation_poll", skip_all)]
pub async fn handler(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    headers: HeaderMap,
    JsonBody(_): JsonBody<NoInput>,
) -> Result<Response, ApiError> {
    super::run(&state, &headers, ip, Action::PollActivation).await
}
