//! `POST /rest/public/user-self-registration/acknowledge/` — confirms the message of an acknowledge step
//! (`ACKNOWLEDGE_MESSAGE_REQUIRED`).

use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::Response;
use gatehouse_core::flow::Action;

use crate::errors::ApiError;
use crate::extract::{ClientIp, JsonBody, NoInput};
use crate::state::AppState;

#[tracing::instrument(name = "registration.acknowledge", skip_all)]
pub async fn handler(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    headers: HeaderMap,
    JsonBody(_): JsonBody<NoInput>,
) -> Result<Response, ApiError> {
    super::run(&state, &headers, ip, Action::Acknowledge).await
}
