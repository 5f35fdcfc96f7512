//! `GET /rest/admin/users[?search=…&limit=…&cursor=…]` (keyset paging by username, or with `search` a prefix of a
//! login name, by that login name), `GET|DELETE /rest/admin/users/{username}`,
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
use crate::extract::{JsonBody, NoInput};
use crate::state::AppState;

#[derive(Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ListQuery {
    /// The start of a username or alias (case-insensitive, every character taken literally); each user
    /// matching it is listed once, in the order of the login name it matched.
    pub search: Option<String>,
    /// Users per page, 1–1000 (100).
    pub limit: Option<u32>,
    /// The `meta.nextCursor` of the previous page, with the same `search` (the last username it showed, or with
    /// `search` the login name the last user matched).
    pub cursor: Option<String>,
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LockRequest {
    pub reason: Option<String>,
}

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
    let limit = match q.limit {
        None => 100,
        Some(n) if (1..=1000).contains(&n) => n,
        Some(n) => {
            return Err(ApiError::InvalidRequest {
                title: format!("{n} is not between 1 and 1000"),
                pointer: Some("/limit".into()),
            });
        }
    };
    // No login name holds a NUL (PostgreSQL text cannot), so such a text would only make the query fail.
    for (text, pointer) in [(&q.search, "/search"), (&q.cursor, "/cursor")] {
        if text.as_deref().is_some_and(|t| t.contains('\0')) {
            return Err(ApiError::InvalidRequest {
                title: "must not contain a NUL character".into(),
                pointer: Some(pointer.into()),
            });
        }
    }
    let search = q.search.map(|s| s.trim().to_owned()).filter(|s| !s.is_empty());
    let page = gatehouse_core::user::UserPage { search, after: q.cursor.filter(|c| !c.is_empty()), limit };
    let found = admin.service(&state).page(&page).await?;
    let ids: Vec<String> = found.users.iter().map(|u| u.id.clone()).collect();
    let totp = state.store.totp_states(&ids).await?;
    let data = found.users.iter().map(|u| user_view(u, totp.get(&u.id).copied())).collect();
    let mut body = document(&state, Value::Array(data));
    if let Some(cursor) = found.next_cursor {
        body.0["meta"]["nextCursor"] = json!(cursor);
    }
    Ok(body)
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
    JsonBody(_): JsonBody<NoInput>,
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

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ResetLinkRequest {
    /// The continuation flow the link leads to (default: the first one configured).
    pub flow: Option<String>,
    #[serde(rename = "validitySeconds")]
    pub validity_seconds: Option<u64>,
}

/// `POST /rest/admin/users/{username}/reset-link` (`{"flow", "validitySeconds"}`, both optional): mails the
/// user a single-use link into a continuation flow (202: queued).
#[tracing::instrument(name = "admin.users.reset_link", skip_all)]
pub async fn reset_link(
    State(state): State<AppState>,
    admin: AdminToken,
    Path(username): Path<String>,
    JsonBody(body): JsonBody<ResetLinkRequest>,
) -> Result<Response, ApiError> {
    let validity = body.validity_seconds.unwrap_or(24 * 3600);
    if validity == 0 || validity > 7 * 24 * 3600 {
        return Err(ApiError::InvalidRequest {
            title: "validitySeconds must be between 1 and 604800".into(),
            pointer: Some("/validitySeconds".into()),
        });
    }
    let mail = gatehouse_core::flow::continuation::LinkMail {
        config: &state.config,
        key: &state.key,
        random: state.random.as_ref(),
        templates: &state.templates,
        now: state.clock.now_ms(),
    };
    let flow = admin.service(&state).send_reset_link(&username, &mail, body.flow.as_deref(), validity).await?;
    state.outbox.queued_unclaimed();
    let data =
        json!({ "type": "reset-link", "id": username, "attributes": { "flow": flow, "validitySeconds": validity } });
    Ok((StatusCode::ACCEPTED, document(&state, data)).into_response())
}

#[tracing::instrument(name = "admin.users.activation", skip_all)]
pub async fn activation(
    State(state): State<AppState>,
    admin: AdminToken,
    Path(username): Path<String>,
    JsonBody(_): JsonBody<NoInput>,
) -> Result<Json<Value>, ApiError> {
    let service = admin.service(&state);
    let user = service.find(&username).await?;
    let audit = service.audit_event("device.activation_started", &user, json!({ "by": "admin" }));
    let now = state.clock.now_ms();
    let a = gatehouse_core::authenticator_service::start_activation(
        state.store.as_ref(),
        &state.key,
        state.random.as_ref(),
        &state.config,
        &user,
        now,
        audit,
    )
    .await
    .map_err(|e| ApiError::Internal(e.to_string()))?;
    Ok(document(
        &state,
        json!({ "type": "app-2fa.activation", "id": user.id, "attributes": {
            "activationUri": a.activation_uri, "activationCode": a.activation_code, "qrCode": a.qr_code,
            "expiresAt": format_timestamp(a.expires_at) } }),
    ))
}

#[tracing::instrument(name = "admin.users.devices", skip_all)]
pub async fn devices(
    State(state): State<AppState>,
    admin: AdminToken,
    Path(username): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let user = admin.service(&state).find(&username).await?;
    let devices = state.store.list_devices(&user.id).await?;
    Ok(document(&state, Value::Array(devices.iter().map(crate::api::protected::devices::device_view).collect())))
}

#[tracing::instrument(name = "admin.users.remove_device", skip_all)]
pub async fn remove_device(
    State(state): State<AppState>,
    admin: AdminToken,
    Path((username, id)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    let service = admin.service(&state);
    let user = service.find(&username).await?;
    let device = state.store.get_device(&id).await?.filter(|d| d.user_id == user.id).ok_or(ApiError::NotFound)?;
    let audit = service.audit_event("device.removed", &user, json!({ "device": device.id, "by": "admin" }));
    let effect = gatehouse_core::ports::Effect::DeleteDevice { id: device.id, user_id: user.id.clone() };
    state.store.apply(&[effect, gatehouse_core::ports::Effect::Audit(audit)]).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
#[schema(as = DeviceRenameRequest)]
pub struct RenameRequest {
    pub display_name: String,
}

#[tracing::instrument(name = "admin.users.rename_device", skip_all)]
pub async fn rename_device(
    State(state): State<AppState>,
    admin: AdminToken,
    Path((username, id)): Path<(String, String)>,
    JsonBody(body): JsonBody<RenameRequest>,
) -> Result<Json<Value>, ApiError> {
    let name = body.display_name.trim().to_owned();
    if name.is_empty() || name.chars().count() > 64 {
        return Err(ApiError::InvalidRequest {
            title: "displayName must be 1–64 characters".into(),
            pointer: Some("/displayName".into()),
        });
    }
    let service = admin.service(&state);
    let user = service.find(&username).await?;
    let device = state.store.get_device(&id).await?.filter(|d| d.user_id == user.id).ok_or(ApiError::NotFound)?;
    let audit = service.audit_event("device.renamed", &user, json!({ "device": device.id, "by": "admin" }));
    let effect = gatehouse_core::ports::Effect::RenameDevice {
        id: device.id.clone(),
        user_id: user.id.clone(),
        display_name: name,
    };
    state.store.apply(&[effect, gatehouse_core::ports::Effect::Audit(audit)]).await?;
    let device = state.store.get_device(&id).await?.ok_or(ApiError::NotFound)?;
    Ok(document(&state, crate::api::protected::devices::device_view(&device)))
}
