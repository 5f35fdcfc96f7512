//! `POST /rest/public/self-service/password/set` — `{"newPassword": "…"}`.

use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::Response;
use gatehouse_core::flow::Action;
use serde::Deserialize;

use crate::errors::ApiError;
use crate::extract::{ClientIp, JsonBody};
use crate::state::AppState;

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PasswordSetRequest {
    #[serde(rename = "newPassword")]
    pub new_password: String,
}

#[tracing::instrument(name = "pss.password_set", skip_all)]
pub async fn handler(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    headers: HeaderMap,
    JsonBody(body): JsonBody<PasswordSetRequest>,
) -> Result<Response, ApiError> {
    super::run(&state, &headers, ip, Action::SetPassword { new_password: body.new_password }).await
}
