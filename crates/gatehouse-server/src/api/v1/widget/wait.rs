//! `POST /v1/widget/{app}/wait` `{"ticket", "approval_id"}` (from the application's origin) → waits (up to
//! `authenticator.poll_wait_seconds`) for the person's decision → `{"type": "api.application.widget.wait",
//! "result": {"status": "pending"|"approved"|"denied"|"expired", "redirect"?}}`. Approved: `redirect` is the
//! application's callback URL with a single-use access token — made once per request, so a second poll gets
//! 409 `ALREADY_USED`. Denied: every later attempt needs a code from the device (`token_required`).

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::response::Response;
use gatehouse_core::ports::{ApprovalStatus, Effect};
use serde::Deserialize;

use super::super::{V1Error, await_decision, ok};
use super::{cors, redirect, ticket_holder};
use crate::state::AppState;

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct WaitRequest {
    pub ticket: String,
    pub approval_id: String,
}

fn status(s: &str) -> Response {
    ok("api.application.widget.wait", serde_json::json!({ "status": s }))
}

#[tracing::instrument(name = "v1.widget.wait", skip_all)]
pub async fn handler(
    State(state): State<AppState>,
    Path(app_id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    cors::answer(&state, &app_id, &headers, &body, |state, app, body: WaitRequest| async move {
        let (ticket, user) = ticket_holder(&state, &app, &body.ticket).await?;
        let not_found = || V1Error::Coded(404, "NOT_FOUND", "no such request of this person");
        let mine = |a: &gatehouse_core::ports::Approval| a.user_id == user.id && a.kind == "app-login";
        let found = state.store.app_approval(&app.id, &body.approval_id).await?.filter(mine);
        let approval = found.ok_or_else(not_found)?;
        if approval.status == ApprovalStatus::Pending {
            await_decision(&state, &approval.id, Some(approval.expires_at)).await?;
        }
        let approval = state.store.app_approval(&app.id, &approval.id).await?.ok_or_else(not_found)?;
        let now = state.clock.now_ms();
        match approval.status {
            ApprovalStatus::Pending if now < approval.expires_at => Ok(status("pending")),
            ApprovalStatus::Pending => {
                state.store.apply(&[Effect::CancelApproval { id: approval.id, at: now }]).await?;
                Ok(status("expired"))
            }
            ApprovalStatus::Approved => {
                if !state.store.claim_app_approval_token(&app.id, &approval.id, now).await? {
                    return Err(V1Error::Coded(409, "ALREADY_USED", "this approval already gave its token"));
                }
                state.applications().decided(&app, &user, true).await?;
                let url = redirect(&state, &app, &user, Some(&approval.id), "UNLOQ", ticket.ip.as_deref()).await?;
                Ok(ok("api.application.widget.wait", serde_json::json!({ "status": "approved", "redirect": url })))
            }
            ApprovalStatus::Denied => {
                state.applications().decided(&app, &user, false).await?;
                Ok(ok("api.application.widget.wait", serde_json::json!({ "status": "denied", "token_required": true })))
            }
            _ => Ok(status("expired")),
        }
    })
    .await
}
