//! `POST /rest/protected/self-service/phone/` — `{"phone": "+41791234567"}` sets the number SMS codes go to
//! (`null` removes it).

use axum::Json;
use axum::extract::State;
use gatehouse_core::admin::validate_phone;
use gatehouse_core::ports::Effect;
use serde::Deserialize;

use super::Authenticated;
use crate::documents;
use crate::errors::ApiError;
use crate::extract::JsonBody;
use crate::state::AppState;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PhoneRequest {
    pub phone: Option<String>,
}

#[tracing::instrument(name = "protected.phone", skip_all)]
pub async fn set(
    State(state): State<AppState>,
    auth: Authenticated,
    JsonBody(body): JsonBody<PhoneRequest>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let phone = match body.phone {
        Some(p) => Some(
            validate_phone(&p)
                .map_err(|e| ApiError::InvalidRequest { title: e.to_string(), pointer: Some("/phone".into()) })?,
        ),
        None => None,
    };
    let now = state.clock.now_ms();
    let audit = super::audit(&state, &auth, "phone.changed", serde_json::json!({ "removed": phone.is_none() }));
    let effect =
        Effect::SetContextItem { user_id: auth.user.id.clone(), key: "phone".into(), value: phone.clone(), at: now };
    state.store.apply(&[effect, Effect::Audit(audit)]).await?;
    Ok(Json(documents::resource(now, "my.phone", &auth.user.id, serde_json::json!({ "phone": phone }))))
}
