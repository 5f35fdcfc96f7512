//! `POST /rest/public/authentication/password/check/` — `{"username": "jdoe", "password": "…"}`.

use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::Response;
use gatehouse_core::flow::Action;
use serde::Deserialize;

use crate::errors::ApiError;
use crate::extract::{ClientIp, JsonBody};
use crate::state::AppState;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PasswordCheckRequest {
    pub username: String,
    pub password: String,
}

#[tracing::instrument(name = "auth.password_check", skip_all)]
pub async fn handler(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    headers: HeaderMap,
    JsonBody(body): JsonBody<PasswordCheckRequest>,
) -> Result<Response, ApiError> {
    crate::extract::check_username(&body.username)?;
    if body.password.len() > 4096 {
        return Err(ApiError::InvalidRequest {
            title: "password is too long".into(),
            pointer: Some("/password".into()),
        });
    }
    let action = Action::CheckPassword { username: body.username, password: body.password };
    super::run(&state, &headers, ip, action).await
}
