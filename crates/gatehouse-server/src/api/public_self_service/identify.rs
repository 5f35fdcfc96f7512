//! `POST /rest/public/self-service/username/identify/` — `{"username": "jdoe"}`.

use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::Response;
use gatehouse_core::flow::Action;
use serde::Deserialize;

use crate::errors::ApiError;
use crate::extract::{ClientIp, JsonBody};
use crate::state::AppState;

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct IdentifyRequest {
    pub username: String,
}

#[tracing::instrument(name = "pss.identify", skip_all)]
pub async fn handler(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    headers: HeaderMap,
    JsonBody(body): JsonBody<IdentifyRequest>,
) -> Result<Response, ApiError> {
    crate::extract::check_username(&body.username)?;
    super::run(&state, &headers, ip, Action::Identify { username: body.username }).await
}
