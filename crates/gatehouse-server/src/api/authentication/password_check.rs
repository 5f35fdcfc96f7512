//! `POST /rest/public/authentication/password/check/` — `{"username": "jdoe", "password": "…"}` (`username`
//! may be left out in a login a self-service flow initialized).

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
pub struct PasswordCheckRequest {
    /// May be left out when a completed self-service flow initialized this login (the user is known).
    pub username: Option<String>,
    pub password: String,
}

#[tracing::instrument(name = "auth.password_check", skip_all)]
pub async fn handler(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    headers: HeaderMap,
    JsonBody(body): JsonBody<PasswordCheckRequest>,
) -> Result<Response, ApiError> {
    if let Some(username) = &body.username {
        crate::extract::check_username(username)?;
    }
    if body.password.len() > 4096 {
        return Err(ApiError::InvalidRequest {
            title: "password is too long".into(),
            pointer: Some("/password".into()),
        });
    }
    let action = Action::CheckPassword { username: body.username, password: body.password };
    super::run(&state, &headers, ip, action).await
}
