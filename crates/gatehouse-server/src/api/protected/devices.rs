//! The user's authenticator devices: `POST /rest/protected/self-service/app-2fa/activation/` starts an
//! activation (`activationUri`, `activationCode`, `qrCode`, `expiresAt`); `GET …/app-2fa/devices` lists the
//! devices; `POST …/app-2fa/devices/{id}/rename/` `{"displayName"}`; `DELETE …/app-2fa/devices/{id}`.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use gatehouse_core::authenticator_service::start_activation;
use gatehouse_core::clock::format_timestamp;
use gatehouse_core::ports::{Device, Effect};
use serde::Deserialize;

use super::Authenticated;
use crate::documents;
use crate::errors::ApiError;
use crate::extract::{JsonBody, NoInput};
use crate::state::AppState;

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RenameRequest {
    pub display_name: String,
}

/// A device as its owner and the helpdesk see it.
pub(crate) fn device_view(d: &Device) -> serde_json::Value {
    serde_json::json!({
        "type": "my.token.app-2fa.device",
        "id": d.id,
        "attributes": {
            "displayName": d.display_name,
            "createdAt": format_timestamp(d.created_at),
            "lastSeenAt": d.last_seen_at.map(format_timestamp),
        }
    })
}

#[tracing::instrument(name = "protected.app2fa_activation", skip_all)]
pub async fn activation(
    State(state): State<AppState>,
    auth: Authenticated,
    JsonBody(_): JsonBody<NoInput>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let audit = super::audit(&state, &auth, "device.activation_started", serde_json::json!({ "by": "user" }));
    let now = state.clock.now_ms();
    let a = start_activation(
        state.store.as_ref(),
        &state.key,
        state.random.as_ref(),
        &state.config.authenticator,
        &auth.user,
        now,
        audit,
    )
    .await
    .map_err(|e| ApiError::Internal(e.to_string()))?;
    Ok(Json(documents::resource(
        now,
        "my.token.app-2fa.activation",
        &auth.user.id,
        serde_json::json!({
            "activationUri": a.activation_uri,
            "activationCode": a.activation_code,
            "qrCode": a.qr_code,
            "expiresAt": format_timestamp(a.expires_at),
        }),
    )))
}

#[tracing::instrument(name = "protected.app2fa_devices", skip_all)]
pub async fn list(State(state): State<AppState>, auth: Authenticated) -> Result<Json<serde_json::Value>, ApiError> {
    let devices = state.store.list_devices(&auth.user.id).await?;
    Ok(Json(serde_json::json!({
        "meta": { "type": "jsonapi.metadata.document", "timestamp": format_timestamp(state.clock.now_ms()) },
        "data": devices.iter().map(device_view).collect::<Vec<_>>(),
    })))
}

async fn own_device(state: &AppState, auth: &Authenticated, id: &str) -> Result<Device, ApiError> {
    state.store.get_device(id).await?.filter(|d| d.user_id == auth.user.id).ok_or(ApiError::NotFound)
}

#[tracing::instrument(name = "protected.app2fa_rename", skip_all)]
pub async fn rename(
    State(state): State<AppState>,
    auth: Authenticated,
    Path(id): Path<String>,
    JsonBody(body): JsonBody<RenameRequest>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let name = body.display_name.trim().to_owned();
    if name.is_empty() || name.chars().count() > 64 {
        return Err(ApiError::InvalidRequest {
            title: "displayName must be 1–64 characters".into(),
            pointer: Some("/displayName".into()),
        });
    }
    let device = own_device(&state, &auth, &id).await?;
    let audit = super::audit(&state, &auth, "device.renamed", serde_json::json!({ "device": device.id }));
    let effect = Effect::RenameDevice { id: device.id.clone(), user_id: auth.user.id.clone(), display_name: name };
    state.store.apply(&[effect, Effect::Audit(audit)]).await?;
    let device = own_device(&state, &auth, &id).await?;
    Ok(Json(serde_json::json!({
        "meta": { "type": "jsonapi.metadata.document", "timestamp": format_timestamp(state.clock.now_ms()) },
        "data": device_view(&device),
    })))
}

#[tracing::instrument(name = "protected.app2fa_remove", skip_all)]
pub async fn remove(
    State(state): State<AppState>,
    auth: Authenticated,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let device = own_device(&state, &auth, &id).await?;
    let audit = super::audit(&state, &auth, "device.removed", serde_json::json!({ "device": device.id, "by": "user" }));
    state
        .store
        .apply(&[Effect::DeleteDevice { id: device.id, user_id: auth.user.id.clone() }, Effect::Audit(audit)])
        .await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}
