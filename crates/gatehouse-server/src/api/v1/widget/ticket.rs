//! `POST /v1/widget/ticket` `{"email", "ip"?}` (API key) → `{"type": "api.application.widget.ticket", "result":
//! {"ticket", "app", "expire_at"}}`: what the application's two-step page gives the widget — a sealed ticket
//! naming the person (ten minutes) and the application's public id.

use axum::extract::State;
use axum::response::Response;
use gatehouse_core::clock::format_timestamp;
use serde::Deserialize;

use super::super::{App, V1Error, V1Json, email, ok};
use crate::state::AppState;

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TicketRequest {
    pub email: String,
    /// The address the person logs in from, shown on the device.
    #[serde(default)]
    pub ip: Option<String>,
}

#[tracing::instrument(name = "v1.widget.ticket", skip_all)]
pub async fn handler(
    State(state): State<AppState>,
    App(app): App,
    V1Json(body): V1Json<TicketRequest>,
) -> Result<Response, V1Error> {
    let address = email(&body.email)?;
    if body.ip.as_ref().is_some_and(|ip| ip.len() > 64) {
        return Err(V1Error::Invalid("ip: at most 64 characters".into()));
    }
    if app.callback_url.is_none() {
        return Err(V1Error::Coded(409, "NO_CALLBACK", "register a callback URL for the widget to return to"));
    }
    let apps = state.applications();
    let enrolled = apps.enrolled(&app, &address).await?;
    let Some(user) = apps.person(&app, &address, false).await?.filter(|_| enrolled) else {
        return Err(V1Error::Coded(404, "NOT_ENROLLED", "this person is not enrolled for the application"));
    };
    let (ticket, expires_at) = apps.widget_ticket(&app, &user, body.ip.as_deref());
    Ok(ok(
        "api.application.widget.ticket",
        serde_json::json!({ "ticket": ticket, "app": app.id, "expire_at": format_timestamp(expires_at) }),
    ))
}
