//! `POST /rest/protected/self-service/reauthenticate/` — `{"password": "…"}`: a step-up. Sensitive changes
//! (removing TOTP, the SMS phone, a new authenticator, secret answers) answer 403 `REAUTHENTICATION_REQUIRED`
//! when the user last proved who they are more than `authentication.session.step_up_seconds` ago.

use axum::Json;
use axum::extract::State;
use gatehouse_core::clock::format_timestamp;
use serde::Deserialize;

use super::Authenticated;
use crate::documents;
use crate::errors::ApiError;
use crate::extract::JsonBody;
use crate::state::AppState;

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReauthenticateRequest {
    pub password: String,
}

#[tracing::instrument(name = "protected.reauthenticate", skip_all)]
pub async fn handler(
    State(state): State<AppState>,
    auth: Authenticated,
    JsonBody(body): JsonBody<ReauthenticateRequest>,
) -> Result<Json<serde_json::Value>, ApiError> {
    if body.password.len() > 4096 {
        return Err(ApiError::InvalidRequest {
            title: "password is too long".into(),
            pointer: Some("/password".into()),
        });
    }
    state.protected().reauthenticate(&auth.me(), body.password).await?;
    let now = state.clock.now_ms();
    let attributes = serde_json::json!({ "authenticatedAt": format_timestamp(now) });
    Ok(Json(documents::resource(now, "session", &auth.session.id, attributes)))
}
