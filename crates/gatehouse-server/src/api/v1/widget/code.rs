//! `POST /v1/widget/{app}/code` `{"ticket", "code", "approval_id"?}` (from the application's origin) → `{"type":
//! "api.application.widget.code", "result": {"redirect"}}`: a code from the person's device instead of (or after
//! denying) a push; the pending request, if named, is withdrawn. Counted on the person's authenticator counter
//! like every other answer; a code works once.

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::response::Response;
use gatehouse_core::applications::CodeCheck;
use gatehouse_core::ports::{ApprovalStatus, Effect};
use serde::Deserialize;

use super::super::{V1Error, count_client, ok};
use super::{cors, redirect, ticket_holder};
use crate::extract::ClientIp;
use crate::state::AppState;

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CodeRequest {
    pub ticket: String,
    /// The code the authenticator shows.
    pub code: String,
    /// The push request this code replaces.
    #[serde(default)]
    pub approval_id: Option<String>,
}

#[tracing::instrument(name = "v1.widget.code", skip_all)]
pub async fn handler(
    State(state): State<AppState>,
    Path(app_id): Path<String>,
    ClientIp(ip): ClientIp,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    cors::answer(&state, &app_id, &headers, &body, |state, app, body: CodeRequest| async move {
        count_client(&state, ip.as_deref()).await?;
        let (ticket, user) = ticket_holder(&state, &app, &body.ticket).await?;
        let apps = state.applications();
        match apps.check_device_code(&app, &user, &body.code).await? {
            CodeCheck::Right => {}
            CodeCheck::Wrong => return Err(V1Error::Coded(400, "TOKEN_INVALID", "the code is wrong or was used")),
            CodeCheck::Exhausted => return Err(V1Error::Coded(403, "USER_LOCKED", "too many failed attempts")),
        }
        if let Some(id) = &body.approval_id
            && let Some(a) = state.store.app_approval(&app.id, id).await?
            && a.user_id == user.id
            && a.status == ApprovalStatus::Pending
        {
            state.store.apply(&[Effect::CancelApproval { id: a.id, at: state.clock.now_ms() }]).await?;
        }
        apps.decided(&app, &user, true).await?;
        let url = redirect(&state, &app, &user, None, "OTP", ticket.ip.as_deref()).await?;
        Ok(ok("api.application.widget.code", serde_json::json!({ "redirect": url })))
    })
    .await
}
