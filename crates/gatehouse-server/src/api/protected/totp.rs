//! TOTP enrollment for the logged-in user:
//! `POST /rest/protected/self-service/totp/enroll/` → `otpauthUri`, `secret` (base32) and `qrCode` (SVG);
//! `POST …/totp/confirm/` `{"otp": "123456"}` activates it with a first valid code;
//! `DELETE /rest/protected/self-service/totp` removes it.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use gatehouse_core::clock::format_timestamp;
use serde::Deserialize;

use super::Authenticated;
use crate::documents;
use crate::errors::ApiError;
use crate::extract::{JsonBody, NoInput};
use crate::state::AppState;

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ConfirmRequest {
    pub otp: String,
}

#[tracing::instrument(name = "protected.totp_enroll", skip_all)]
pub async fn enroll(
    State(state): State<AppState>,
    auth: Authenticated,
    JsonBody(_): JsonBody<NoInput>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let e = state.protected().enroll_totp(&auth.me()).await?;
    Ok(Json(documents::resource(
        state.clock.now_ms(),
        "my.token.totp.enrollment",
        &auth.user.id,
        serde_json::json!({
            "otpauthUri": e.otpauth_uri,
            "secret": e.secret_base32,
            "qrCode": e.qr_svg,
            "expiresAt": format_timestamp(e.expires_at),
        }),
    )))
}

#[tracing::instrument(name = "protected.totp_confirm", skip_all)]
pub async fn confirm(
    State(state): State<AppState>,
    auth: Authenticated,
    JsonBody(body): JsonBody<ConfirmRequest>,
) -> Result<Json<serde_json::Value>, ApiError> {
    state.protected().confirm_totp(&auth.me(), &body.otp).await?;
    let now = state.clock.now_ms();
    Ok(Json(documents::resource(now, "my.token.totp", &auth.user.id, serde_json::json!({ "confirmed": true }))))
}

#[tracing::instrument(name = "protected.totp_remove", skip_all)]
pub async fn remove(State(state): State<AppState>, auth: Authenticated) -> Result<Response, ApiError> {
    state.protected().remove_totp(&auth.me()).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}
