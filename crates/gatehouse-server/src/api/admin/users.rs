//! `GET /rest/admin/users[?search=…]`, `GET|DELETE /rest/admin/users/{username}`,
//! `POST …/{username}/lock` (`{"reason": "…"}`, optional), `POST …/{username}/unlock` (also resets every
//! counter), `DELETE …/{username}/counters/{methodId}`.

use axum::Json;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use gatehouse_core::clock::format_timestamp;
use serde::Deserialize;
use serde_json::{Value, json};

use super::{AdminToken, user_view};
use crate::errors::ApiError;
use crate::extract::JsonBody;
use crate::state::AppState;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    pub search: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LockRequest {
    pub reason: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EmptyRequest {}

fn document(state: &AppState, data: Value) -> Json<Value> {
    Json(json!({
        "meta": { "type": "jsonapi.metadata.document", "timestamp": format_timestamp(state.clock.now_ms()) },
        "data": data,
    }))
}

async fn view(state: &AppState, user: &gatehouse_core::user::User) -> Result<Value, ApiError> {
    let totp = state.store.get_totp(&user.id).await?.map(|t| t.confirmed);
    Ok(user_view(user, totp))
}

#[tracing::instrument(name = "admin.users.list", skip_all)]
pub async fn list(
    State(state): State<AppState>,
    admin: AdminToken,
    query: Result<Query<ListQuery>, QueryRejection>,
) -> Result<Json<Value>, ApiError> {
    let Query(q) = query.map_err(|e| ApiError::InvalidRequest { title: e.body_text(), pointer: None })?;
    let service = admin.service(&state);
    let users = match q.search.as_deref().filter(|s| !s.trim().is_empty()) {
        Some(text) => service.search(text).await?,
        None => service.list().await?,
    };
    let mut data = Vec::with_capacity(users.len());
    for u in &users {
        data.push(view(&state, u).await?);
    }
    Ok(document(&state, Value::Array(data)))
}

#[tracing::instrument(name = "admin.users.show", skip_all)]
pub async fn show(
    State(state): State<AppState>,
    admin: AdminToken,
    Path(username): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let user = admin.service(&state).find(&username).await?;
    Ok(document(&state, view(&state, &user).await?))
}

#[tracing::instrument(name = "admin.users.lock", skip_all)]
pub async fn lock(
    State(state): State<AppState>,
    admin: AdminToken,
    Path(username): Path<String>,
    JsonBody(body): JsonBody<LockRequest>,
) -> Result<Json<Value>, ApiError> {
    let user = admin.service(&state).lock(&username, body.reason.as_deref()).await?;
    Ok(document(&state, view(&state, &user).await?))
}

#[tracing::instrument(name = "admin.users.unlock", skip_all)]
pub async fn unlock(
    State(state): State<AppState>,
    admin: AdminToken,
    Path(username): Path<String>,
    JsonBody(_): JsonBody<EmptyRequest>,
) -> Result<Json<Value>, ApiError> {
    let user = admin.service(&state).unlock(&username).await?;
    Ok(document(&state, view(&state, &user).await?))
}

#[tracing::instrument(name = "admin.users.reset_counter", skip_all)]
pub async fn reset_counter(
    State(state): State<AppState>,
    admin: AdminToken,
    Path((username, method_id)): Path<(String, String)>,
) -> Result<Json<Value>, ApiError> {
    let user = admin.service(&state).reset_counter(&username, &method_id).await?;
    Ok(document(&state, view(&state, &user).await?))
}

#[tracing::instrument(name = "admin.users.delete", skip_all)]
pub async fn remove(
    State(state): State<AppState>,
    admin: AdminToken,
    Path(username): Path<String>,
) -> Result<Response, ApiError> {
    admin.service(&state).delete(&username).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}
