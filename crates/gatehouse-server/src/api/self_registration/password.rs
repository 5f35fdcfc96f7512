//! `POST /rest/public/user-self-registration/registration/password/` `{"password": "…"}`
//! (`PASSWORD_REGISTRATION_REQUIRED`): the API takes the password once; a UI asks for it twice.

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
pub struct PasswordRequest {
    pub password: String,
}

#[tracing::instrument(name = "registration.password", skip_all)]
pub async fn handler(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    headers: HeaderMap,
    JsonBody(body): JsonBody<PasswordRequest>,
) -> Result<Response, ApiError> {
    // Far above any policy's maximum: refused before it reaches the hasher.
    if body.password.chars().count() > 1024 {
        return Err(ApiError::InvalidRequest {
            title: "password is too long".into(),
            pointer: Some("/password".into()),
        });
    }
    super::run(&state, &headers, ip, Action::RegisterPassword { password: body.password }).await
}
