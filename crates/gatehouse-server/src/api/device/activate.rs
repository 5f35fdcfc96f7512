//! `POST /rest/device/activate` — `{"code", "publicKey", "offlineKey", "displayName"}`: registers a device with
//! a one-time activation code. Keys are base64url: the Ed25519 public key (32 bytes) and the device's offline
//! key (32 random bytes, kept sealed with the server key).

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use gatehouse_core::audit::AuditEvent;
use gatehouse_core::authenticator::{decode, is_public_key};
use gatehouse_core::authenticator_service::ACTIVATION_PURPOSE;
use gatehouse_core::flow::OFFLINE_KEY_CONTEXT;
use gatehouse_core::ports::{Device, Effect};
use gatehouse_core::random::random_id;
use serde::Deserialize;

use crate::documents;
use crate::errors::ApiError;
use crate::extract::{ClientIp, JsonBody};
use crate::state::AppState;

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ActivateRequest {
    pub code: String,
    pub public_key: String,
    pub offline_key: String,
    pub display_name: String,
}

fn invalid(title: &str, pointer: &str) -> ApiError {
    ApiError::InvalidRequest { title: title.into(), pointer: Some(pointer.into()) }
}

#[tracing::instrument(name = "device.activate", skip_all)]
pub async fn handler(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    JsonBody(body): JsonBody<ActivateRequest>,
) -> Result<(StatusCode, Json<serde_json::Value>), ApiError> {
    // Activation codes are guessed here: limited per client like every other answer.
    crate::api::limits::client(&state, ip.as_deref()).await?;
    if !is_public_key(&body.public_key) {
        return Err(invalid("publicKey must be a base64url Ed25519 public key", "/publicKey"));
    }
    let offline = decode(&body.offline_key)
        .filter(|k| k.len() == 32)
        .ok_or_else(|| invalid("offlineKey must be 32 bytes, base64url", "/offlineKey"))?;
    let name = body.display_name.trim();
    if name.is_empty() || name.chars().count() > 64 {
        return Err(invalid("displayName must be 1–64 characters", "/displayName"));
    }
    let code: String = body.code.chars().filter(|c| c.is_ascii_digit()).collect();
    let now = state.clock.now_ms();
    let device = Device {
        id: random_id(state.random.as_ref()),
        user_id: String::new(),
        public_key: body.public_key.clone(),
        sealed_offline: state.key.seal(state.random.as_ref(), OFFLINE_KEY_CONTEXT, &offline),
        display_name: name.to_owned(),
        created_at: now,
        last_seen_at: None,
    };
    let activated = state.store.activate_device(&state.key.hash_secret(ACTIVATION_PURPOSE, &code), now, &device).await;
    let user_id = match activated {
        Ok(Some(user_id)) => user_id,
        // Unknown, used and expired codes look the same.
        Ok(None) => {
            return Err(ApiError::Rejected {
                status: StatusCode::BAD_REQUEST,
                code: gatehouse_core::flow::ErrorCode::ActivationInvalid,
                title: "the activation code is unknown, used or expired".into(),
                pointer: Some("/code"),
            });
        }
        Err(gatehouse_core::ports::StoreError::Other(e)) if e.to_lowercase().contains("unique") => {
            return Err(invalid("this public key is registered already", "/publicKey"));
        }
        Err(e) => return Err(e.into()),
    };
    let user = state.store.get_user(&user_id).await?.ok_or(ApiError::NotFound)?;
    let audit = AuditEvent {
        id: random_id(state.random.as_ref()),
        at: now,
        event: "device.activated".into(),
        actor: format!("user:{}", user.username),
        user_id: Some(user.id.clone()),
        username: Some(user.username.clone()),
        flow_id: None,
        session_id: None,
        ip,
        outcome: "ok".into(),
        details: serde_json::json!({ "device": device.id, "name": device.display_name }),
    };
    state.store.apply(&[Effect::Audit(audit)]).await?;
    let doc = documents::resource(
        now,
        "device",
        &device.id,
        serde_json::json!({ "deviceId": device.id, "username": user.username, "displayName": device.display_name }),
    );
    Ok((StatusCode::CREATED, Json(doc)))
}
