//! `POST /v1/token` `{"token", "sid"?, "ip"?}` → `{"type": "api.application.approval.token", "result": {…}}`: the
//! person behind an access token of `/v1/authenticate`, and the approval's id, method and IP. A token works once,
//! for a minute, for the application it was issued to: of two calls with one token, exactly one succeeds.

use axum::extract::State;
use axum::response::Response;
use serde::Deserialize;

use super::authenticate::person_data;
use super::{App, V1Error, V1Json, ok};
use crate::state::AppState;

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TokenRequest {
    pub token: String,
    /// The application's session id, kept with the used token (for a remote logout later), at most 128
    /// characters.
    #[serde(default)]
    pub sid: Option<String>,
    #[serde(default)]
    pub ip: Option<String>,
}

#[tracing::instrument(name = "v1.token", skip_all)]
pub async fn handler(
    State(state): State<AppState>,
    App(app): App,
    V1Json(body): V1Json<TokenRequest>,
) -> Result<Response, V1Error> {
    if body.sid.as_ref().is_some_and(|s| s.len() > 128) || body.ip.as_ref().is_some_and(|s| s.len() > 64) {
        return Err(V1Error::Invalid("sid: at most 128 characters; ip: at most 64".into()));
    }
    let sid = body.sid.as_deref().map(str::trim).filter(|s| !s.is_empty());
    let Some((record, user)) = state.applications().redeem(&app, body.token.trim(), sid).await? else {
        return Err(V1Error::Coded(400, "TOKEN_INVALID", "the token is unknown, used or expired"));
    };
    let enrollment = state.store.app_enrollment(&app.id, &user.id).await?;
    let mut result = person_data(&user);
    if let Some(map) = result.as_object_mut() {
        map.insert("approval_id".into(), serde_json::json!(record.approval_id));
        map.insert("method".into(), serde_json::json!(record.method));
        map.insert("ip_source".into(), serde_json::json!(record.ip));
        map.insert("token_type".into(), serde_json::json!("AUTHENTICATE"));
        map.insert("name".into(), serde_json::json!(enrollment.and_then(|e| e.name)));
        map.insert("sid".into(), serde_json::json!(record.sid));
    }
    Ok(ok("api.application.approval.token", result))
}
