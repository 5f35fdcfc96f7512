//! The third-party applications of the v1 API, for administrators: `GET /rest/admin/applications`,
//! `POST /rest/admin/applications` `{"name", "origin", "callbackUrl"?}` (200; the answer holds the API key,
//! shown once), `POST /rest/admin/applications/{name}/rotate` (a new key; the old one stops) and
//! `DELETE /rest/admin/applications/{name}` (revoked).

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use gatehouse_core::applications::AppError;
use serde::Deserialize;

use super::AdminToken;
use crate::documents;
use crate::errors::ApiError;
use crate::extract::{JsonBody, NoInput};
use crate::state::AppState;

impl From<AppError> for ApiError {
    fn from(e: AppError) -> Self {
        match e {
            AppError::Invalid { field, message } => {
                ApiError::InvalidRequest { title: message, pointer: Some(format!("/{field}")) }
            }
            AppError::NameTaken(name) => ApiError::InvalidRequest {
                title: format!("an application named `{name}` exists"),
                pointer: Some("/name".into()),
            },
            AppError::NotFound(_) => ApiError::NotFound,
            AppError::Store(s) => s.into(),
            AppError::Internal(why) => ApiError::Internal(why),
        }
    }
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct CreateRequest {
    pub name: String,
    /// `https://host[:port]` (http only for localhost).
    pub origin: String,
    #[serde(default)]
    pub callback_url: Option<String>,
}

#[tracing::instrument(name = "admin.applications.list", skip_all)]
pub async fn list(State(state): State<AppState>, _admin: AdminToken) -> Result<Json<serde_json::Value>, ApiError> {
    let apps = state.store.list_applications().await?;
    let now = state.clock.now_ms();
    Ok(Json(documents::resource(now, "applications", "applications", serde_json::json!({ "applications": apps }))))
}

#[tracing::instrument(name = "admin.applications.create", skip_all)]
pub async fn create(
    State(state): State<AppState>,
    admin: AdminToken,
    JsonBody(body): JsonBody<CreateRequest>,
) -> Result<Response, ApiError> {
    let (app, api_key) =
        state.applications().create(&admin.actor(), &body.name, &body.origin, body.callback_url.as_deref()).await?;
    let doc = documents::resource(
        state.clock.now_ms(),
        "application",
        &app.id,
        serde_json::json!({ "name": app.name, "origin": app.origin, "callbackUrl": app.callback_url, "apiKey": api_key }),
    );
    Ok(Json(doc).into_response())
}

#[tracing::instrument(name = "admin.applications.rotate", skip_all)]
pub async fn rotate(
    State(state): State<AppState>,
    admin: AdminToken,
    Path(name): Path<String>,
    JsonBody(_): JsonBody<NoInput>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let api_key = state.applications().rotate(&admin.actor(), &name).await?;
    Ok(Json(documents::resource(
        state.clock.now_ms(),
        "application.key",
        &name,
        serde_json::json!({ "apiKey": api_key }),
    )))
}

#[tracing::instrument(name = "admin.applications.revoke", skip_all)]
pub async fn revoke(
    State(state): State<AppState>,
    admin: AdminToken,
    Path(name): Path<String>,
) -> Result<Response, ApiError> {
    state.applications().revoke(&admin.actor(), &name).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}
