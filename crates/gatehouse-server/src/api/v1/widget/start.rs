//! `POST /v1/widget/{app}/start` `{"ticket"}` (from the application's origin) → `{"type":
//! "api.application.widget.start", "result": {"approval_id", "number", "expire_at", "token_required": false}}`:
//! a push request to the person's devices with a number to pick there, which the widget shows. After a denial
//! no request is pushed: `{"token_required": true}`, and the widget asks for a code from the device.

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::response::Response;
use gatehouse_core::clock::format_timestamp;
use serde::Deserialize;

use super::super::{count_client, ok, send_request};
use super::{cors, ticket_holder};
use crate::extract::ClientIp;
use crate::state::AppState;

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct StartRequest {
    pub ticket: String,
}

#[tracing::instrument(name = "v1.widget.start", skip_all)]
pub async fn handler(
    State(state): State<AppState>,
    Path(app_id): Path<String>,
    ClientIp(ip): ClientIp,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    cors::answer(&state, &app_id, &headers, &body, |state, app, body: StartRequest| async move {
        // Every start pushes to a phone: limited per browser address like every other public call.
        count_client(&state, ip.as_deref()).await?;
        let (ticket, user) = ticket_holder(&state, &app, &body.ticket).await?;
        let apps = state.applications();
        if apps.token_required(&app, &user).await? {
            return Ok(ok("api.application.widget.start", serde_json::json!({ "token_required": true })));
        }
        let timeout = i64::try_from(state.config.authenticator.approval_timeout_seconds * 1000).unwrap_or(120_000);
        let expires_at = state.clock.now_ms() + timeout;
        let approval = apps.widget_request(&app, &user, ticket.ip.as_deref(), expires_at);
        let (id, number) = (approval.id.clone(), approval.number);
        send_request(&state, &app, approval).await?;
        Ok(ok(
            "api.application.widget.start",
            serde_json::json!({
                "token_required": false,
                "approval_id": id,
                "number": number,
                "expire_at": format_timestamp(expires_at),
            }),
        ))
    })
    .await
}
