//! `POST /rest/protected/self-service/phone/` — `{"phone": "+41791234567"}` sets the number SMS codes go to
//! (`null` removes it).

use axum::Json;
use axum::extract::State;
use serde::Deserialize;

use super::Authenticated;
use crate::documents;
use crate::errors::ApiError;
use crate::extract::JsonBody;
use crate::state::AppState;

#[derive(Deserialize, utoipa::ToSchema)]
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
    let phone = state.protected().set_phone(&auth.me(), body.phone.as_deref()).await?;
    let now = state.clock.now_ms();
    Ok(Json(documents::resource(now, "my.phone", &auth.user.id, serde_json::json!({ "phone": phone }))))
}
