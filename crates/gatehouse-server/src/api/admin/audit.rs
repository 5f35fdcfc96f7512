//! `GET /rest/admin/audit[?user=&action=&outcome=&from=&to=&limit=&cursor=]`: the audit trail, newest first, one
//! page at a time. `action` is an event name or a prefix ending in `.`; `from`/`to` are RFC 3339 times or
//! milliseconds; `meta.nextCursor` continues where a full page ended.

use axum::Json;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use gatehouse_core::audit::{AuditCursor, AuditFilters, AuditOrder, AuditQuery};
use gatehouse_core::clock::format_timestamp;
use serde::Deserialize;
use serde_json::{Value, json};

use super::AdminToken;
use crate::errors::ApiError;
use crate::state::AppState;

#[derive(Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct AuditParams {
    pub user: Option<String>,
    pub action: Option<String>,
    pub outcome: Option<String>,
    pub from: Option<String>,
    pub to: Option<String>,
    pub limit: Option<u32>,
    pub cursor: Option<String>,
}

#[tracing::instrument(name = "admin.audit.list", skip_all)]
pub async fn list(
    State(state): State<AppState>,
    _admin: AdminToken,
    params: Result<Query<AuditParams>, QueryRejection>,
) -> Result<Json<Value>, ApiError> {
    let Query(p) = params.map_err(|e| ApiError::InvalidRequest { title: e.body_text(), pointer: None })?;
    let filters = AuditFilters {
        user: p.user.as_deref(),
        action: p.action.as_deref(),
        outcome: p.outcome.as_deref(),
        from: p.from.as_deref(),
        to: p.to.as_deref(),
        limit: p.limit,
        cursor: p.cursor.as_deref(),
    };
    let query = AuditQuery::parse(&filters, AuditOrder::NewestFirst)
        .map_err(|(name, why)| ApiError::InvalidRequest { title: why, pointer: Some(format!("/{name}")) })?;
    let events = state.store.query_audit(&query).await?;
    let full = events.len() == query.limit() as usize;
    let next = events.last().filter(|_| full).map(|e| AuditCursor::of(e).encode());
    let mut meta = json!({ "type": "jsonapi.metadata.document", "timestamp": format_timestamp(state.clock.now_ms()) });
    if let Some(next) = next {
        meta["nextCursor"] = json!(next);
    }
    Ok(Json(json!({ "meta": meta, "data": events.iter().map(|e| e.view()).collect::<Vec<_>>() })))
}
