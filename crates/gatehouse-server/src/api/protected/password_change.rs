//! `POST /rest/protected/self-service/password/change/` — `{"oldPassword": "…", "newPassword": "…"}`.
//! A wrong old password counts (method `OLD_PASSWORD`); past the maximum the user is locked with
//! `LockReason.MaxWrongOldPassword` and every session ends. The new password meets the same policy check as the
//! set-password step (`gatehouse_core::protected`).

use axum::Json;
use axum::extract::State;
use serde::Deserialize;

use super::Authenticated;
use crate::documents;
use crate::errors::ApiError;
use crate::extract::JsonBody;
use crate::state::AppState;

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ChangeRequest {
    pub old_password: String,
    pub new_password: String,
}

#[tracing::instrument(name = "protected.password_change", skip_all)]
pub async fn handler(
    State(state): State<AppState>,
    auth: Authenticated,
    JsonBody(body): JsonBody<ChangeRequest>,
) -> Result<Json<serde_json::Value>, ApiError> {
    if body.old_password.len() > 4096 {
        return Err(ApiError::InvalidRequest {
            title: "oldPassword is too long".into(),
            pointer: Some("/oldPassword".into()),
        });
    }
    state.protected().change_password(&auth.me(), body.old_password, body.new_password).await?;
    let now = state.clock.now_ms();
    Ok(Json(documents::resource(now, "my.password", &auth.user.id, serde_json::json!({ "changed": true }))))
}
