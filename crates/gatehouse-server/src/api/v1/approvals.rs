//! `GET /v1/approvals?page=&per_page=` (`api.application.approval.find`, with `meta` counts) and
//! `GET /v1/approvals/{id}` (`api.application.approval.read`): the push requests this application made — its
//! logins and enrollment consents — newest first. Decided requests are kept an hour (housekeeping).

use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Response};
use gatehouse_core::clock::format_timestamp;
use gatehouse_core::ports::Approval;
use serde::Deserialize;

use super::{App, V1Error, ok};
use crate::state::AppState;

#[derive(Debug, Deserialize, utoipa::IntoParams)]
pub struct ApprovalsQuery {
    /// 1-based page number (default 1).
    pub page: Option<u32>,
    /// Requests per page, 1–100 (default 20).
    pub per_page: Option<u32>,
}

fn view(a: &Approval) -> serde_json::Value {
    serde_json::json!({
        "id": a.id,
        "type": if a.kind == "app-enroll" { "ENROLLMENT" } else { "AUTHENTICATION" },
        "method": "UNLOQ",
        "status": a.status.as_str().to_ascii_uppercase(),
        "unloq_id": a.user_id,
        "ip_source": a.context.get("ip"),
        "created_at": format_timestamp(a.created_at),
        "decided_at": a.decided_at.map(format_timestamp),
        "device": a.device_id.as_ref().map(|id| serde_json::json!({ "id": id })),
    })
}

#[tracing::instrument(name = "v1.approvals", skip_all)]
pub async fn list(
    State(state): State<AppState>,
    App(app): App,
    query: Result<Query<ApprovalsQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Response, V1Error> {
    let Query(q) = query.map_err(|e| V1Error::Invalid(e.body_text()))?;
    let page = q.page.unwrap_or(1);
    let per_page = q.per_page.unwrap_or(20);
    if page == 0 || !(1..=100).contains(&per_page) {
        return Err(V1Error::Invalid("page: from 1; per_page: 1–100".into()));
    }
    let offset = i64::from(page - 1) * i64::from(per_page);
    let (approvals, total) = state.store.app_approvals(&app.id, offset, i64::from(per_page)).await?;
    let body = serde_json::json!({
        "type": "api.application.approval.find",
        "meta": {
            "total_count": total,
            "page_count": (total + i64::from(per_page) - 1) / i64::from(per_page),
            "current_count": approvals.len(),
            "current_page": page,
        },
        "result": approvals.iter().map(view).collect::<Vec<_>>(),
    });
    Ok(axum::Json(body).into_response())
}

#[tracing::instrument(name = "v1.approval", skip_all)]
pub async fn read(State(state): State<AppState>, App(app): App, Path(id): Path<String>) -> Result<Response, V1Error> {
    if id.len() > 64 {
        return Err(V1Error::Invalid("id: at most 64 characters".into()));
    }
    let approval = state.store.app_approval(&app.id, &id).await?;
    let approval = approval.ok_or(V1Error::Coded(404, "APPROVAL_NOT_FOUND", "no such request of this application"))?;
    Ok(ok("api.application.approval.read", view(&approval)))
}
