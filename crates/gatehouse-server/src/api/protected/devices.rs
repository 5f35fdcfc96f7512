//! The user's authenticator devices: `POST /rest/protected/self-service/app-2fa/activation/` starts an
//! activation (`activationUri`, `activationCode`, `qrCode`, `expiresAt`); `GET …/app-2fa/devices` lists the
//! devices; `POST …/app-2fa/devices/{id}/rename/` `{"displayName"}`; `DELETE …/app-2fa/devices/{id}`.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use gatehouse_core::clock::format_timestamp;
use gatehouse_core::ports::Device;
use serde::Deserialize;

use super::Authenticated;
use crate::documents;
use crate::errors::ApiError;
use crate::extract::{JsonBody, NoInput};
use crate::state::AppState;

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
#[schema(as = DeviceRenameRequest)]
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
    let a = state.protected().start_device_activation(&auth.me()).await?;
    Ok(Json(documents::resource(
        state.clock.now_ms(),
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
    let devices = state.protected().devices(&auth.me()).await?;
    Ok(Json(serde_json::json!({
        "meta": { "type": "jsonapi.metadata.document", "timestamp": format_timestamp(state.clock.now_ms()) },
        "data": devices.iter().map(device_view).collect::<Vec<_>>(),
    })))
}

#[tracing::instrument(name = "protected.app2fa_rename", skip_all)]
pub async fn rename(
    State(state): State<AppState>,
    auth: Authenticated,
    Path(id): Path<String>,
    JsonBody(body): JsonBody<RenameRequest>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let device = state.protected().rename_device(&auth.me(), &id, &body.display_name).await?;
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
    state.protected().remove_device(&auth.me(), &id).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}
