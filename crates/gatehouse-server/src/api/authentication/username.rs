//! `POST /rest/public/authentication/username/identify/` — `{"username": "jdoe"}`: the `username` step
//! (Gatehouse's own path). Without a running login it starts the default application's flow.

use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::Response;
use gatehouse_core::flow::Action;

use crate::api::public_self_service::IdentifyRequest;
use crate::errors::ApiError;
use crate::extract::{ClientIp, JsonBody};
use crate::state::AppState;

#[tracing::instrument(name = "auth.username_identify", skip_all)]
pub async fn handler(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    headers: HeaderMap,
    JsonBody(body): JsonBody<IdentifyRequest>,
) -> Result<Response, ApiError> {
    crate::extract::check_username(&body.username)?;
    super::run(&state, &headers, ip, Action::Identify { username: body.username }).await
}
