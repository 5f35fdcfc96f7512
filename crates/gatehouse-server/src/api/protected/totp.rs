//! TOTP enrollment for the logged-in user:
//! `POST /rest/protected/self-service/totp/enroll/` → `otpauthUri`, `secret` (base32) and `qrCode` (SVG);
//! `POST …/totp/confirm/` `{"otp": "123456"}` activates it with a first valid code;
//! `DELETE /rest/protected/self-service/totp` removes it.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use gatehouse_core::clock::format_timestamp;
use gatehouse_core::crypto::totp;
use gatehouse_core::flow::TOTP_SEAL_CONTEXT;
use gatehouse_core::ports::Effect;
use serde::Deserialize;

use super::Authenticated;
use crate::documents;
use crate::errors::ApiError;
use crate::extract::{JsonBody, NoInput};
use crate::state::AppState;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConfirmRequest {
    pub otp: String,
}

fn internal(e: impl std::fmt::Display) -> ApiError {
    ApiError::Internal(e.to_string())
}

#[tracing::instrument(name = "protected.totp_enroll", skip_all)]
pub async fn enroll(
    State(state): State<AppState>,
    auth: Authenticated,
    JsonBody(_): JsonBody<NoInput>,
) -> Result<Json<serde_json::Value>, ApiError> {
    if state.store.get_totp(&auth.user.id).await?.is_some_and(|t| t.confirmed) {
        return Err(ApiError::Rejected {
            status: StatusCode::CONFLICT,
            code: "TOTP_ALREADY_ENROLLED",
            title: "remove the current authenticator first".into(),
            pointer: None,
        });
    }
    let cfg = &state.config.authentication.totp;
    let secret = totp::new_secret(state.random.as_ref());
    let uri = totp::otpauth_uri(cfg, &secret, &auth.user.username).map_err(internal)?;
    let qr = totp::qr_svg(&uri).map_err(internal)?;
    let now = state.clock.now_ms();
    let sealed_secret = state.key.seal(state.random.as_ref(), TOTP_SEAL_CONTEXT, &secret);
    let audit = super::audit(&state, &auth, "totp.enrollment_started", serde_json::json!({}));
    state
        .store
        .apply(&[Effect::SetTotp { user_id: auth.user.id.clone(), sealed_secret, at: now }, Effect::Audit(audit)])
        .await?;
    let expires = now + i64::try_from(cfg.enrollment_timeout_seconds * 1000).unwrap_or(i64::MAX);
    Ok(Json(documents::resource(
        now,
        "my.token.totp.enrollment",
        &auth.user.id,
        serde_json::json!({
            "otpauthUri": uri,
            "secret": totp::base32_secret(&secret),
            "qrCode": qr,
            "expiresAt": format_timestamp(expires),
        }),
    )))
}

#[tracing::instrument(name = "protected.totp_confirm", skip_all)]
pub async fn confirm(
    State(state): State<AppState>,
    auth: Authenticated,
    JsonBody(body): JsonBody<ConfirmRequest>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let cfg = &state.config.authentication.totp;
    let now = state.clock.now_ms();
    let timeout = i64::try_from(cfg.enrollment_timeout_seconds * 1000).unwrap_or(i64::MAX);
    let pending = state.store.get_totp(&auth.user.id).await?.filter(|t| !t.confirmed && now - t.created_at <= timeout);
    let Some(pending) = pending else {
        return Err(ApiError::Rejected {
            status: StatusCode::BAD_REQUEST,
            code: "NO_PENDING_ENROLLMENT",
            title: "start an enrollment first (or again: it expired)".into(),
            pointer: None,
        });
    };
    let secret = state.key.open(TOTP_SEAL_CONTEXT, &pending.sealed_secret).map_err(internal)?;
    let step = totp::matching_step(cfg, &secret, &body.otp, now).map_err(internal)?;
    let accepted = match step {
        Some(step) => state.store.consume_totp_step(&auth.user.id, step).await?,
        None => false,
    };
    if !accepted {
        return Err(ApiError::Rejected {
            status: StatusCode::BAD_REQUEST,
            code: "OTP_WRONG",
            title: "the code does not match".into(),
            pointer: Some("/otp"),
        });
    }
    let audit = super::audit(&state, &auth, "totp.enrolled", serde_json::json!({}));
    state.store.apply(&[Effect::ConfirmTotp { user_id: auth.user.id.clone() }, Effect::Audit(audit)]).await?;
    Ok(Json(documents::resource(now, "my.token.totp", &auth.user.id, serde_json::json!({ "confirmed": true }))))
}

#[tracing::instrument(name = "protected.totp_remove", skip_all)]
pub async fn remove(State(state): State<AppState>, auth: Authenticated) -> Result<Response, ApiError> {
    let audit = super::audit(&state, &auth, "totp.removed", serde_json::json!({}));
    state.store.apply(&[Effect::DeleteTotp { user_id: auth.user.id.clone() }, Effect::Audit(audit)]).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}
