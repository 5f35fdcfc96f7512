//! `POST /v1/enroll` `{"email", "name"?}` → `{"type": "api.application.enroll.user", "result": {"exists", "qr_url",
//! "expire_at"}}`, and `DELETE /v1/enroll` `{"email"}` (the "disable two-step verification" button).
//!
//! A person without a device gets an activation (`qr_url` is the QR code as an SVG data URL; `activation_uri` and
//! `activation_code` are the same, for a link or typing) on the application's own profile of the address. A
//! Gatehouse user with that login name and a device is asked on the device instead, and the call waits up to
//! 30 s for the answer: approved → enrolled (no QR), denied → 403 `ENROLLMENT_DENIED`, no answer → 408
//! `APPROVAL_TIMEOUT` (the request is withdrawn).

use std::time::Duration;

use axum::extract::State;
use axum::response::Response;
use base64::Engine as _;
use gatehouse_core::applications::Enrollment;
use gatehouse_core::clock::format_timestamp;
use serde::Deserialize;

use super::{App, V1Error, V1Json, email, ok};
use crate::extract::ClientIp;
use crate::state::AppState;

/// How long an enrollment call waits for the person's decision.
const CONSENT_WAIT: Duration = Duration::from_secs(30);

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EnrollRequest {
    pub email: String,
    /// The application's display name for the person (kept with the enrollment; `/v1/token` returns it).
    #[serde(default)]
    pub name: Option<String>,
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RemoveRequest {
    pub email: String,
}

#[tracing::instrument(name = "v1.enroll", skip_all)]
pub async fn enroll(
    State(state): State<AppState>,
    App(app): App,
    ClientIp(ip): ClientIp,
    V1Json(body): V1Json<EnrollRequest>,
) -> Result<Response, V1Error> {
    let address = email(&body.email)?;
    let name = body.name.as_deref().map(str::trim).filter(|n| !n.is_empty());
    if name.is_some_and(|n| n.chars().count() > 128 || n.chars().any(char::is_control)) {
        return Err(V1Error::Invalid("name: at most 128 characters, no control characters".into()));
    }
    let apps = state.applications();
    let result = match apps.enroll(&app, &address, name).await? {
        Enrollment::Done { existed } => serde_json::json!({ "exists": existed, "qr_url": null, "expire_at": null }),
        Enrollment::Activate { existed, activation } => {
            let svg = base64::engine::general_purpose::STANDARD.encode(activation.qr_code.as_bytes());
            serde_json::json!({
                "exists": existed,
                "qr_url": format!("data:image/svg+xml;base64,{svg}"),
                "activation_uri": activation.activation_uri,
                "activation_code": activation.activation_code,
                "expire_at": format_timestamp(activation.expires_at),
            })
        }
        Enrollment::Consent(user) => {
            let wait_ms = i64::try_from(CONSENT_WAIT.as_millis()).unwrap_or(30_000);
            let approval = apps.consent_request(&app, &user, ip.as_deref(), state.clock.now_ms() + wait_ms);
            if !super::push_and_wait(&state, &app, approval, CONSENT_WAIT).await? {
                return Err(V1Error::Denied);
            }
            apps.finish_enrollment(&app, &user, name).await?;
            serde_json::json!({ "exists": true, "qr_url": null, "expire_at": null })
        }
    };
    Ok(ok("api.application.enroll.user", result))
}

#[tracing::instrument(name = "v1.unenroll", skip_all)]
pub async fn remove(
    State(state): State<AppState>,
    App(app): App,
    V1Json(body): V1Json<RemoveRequest>,
) -> Result<Response, V1Error> {
    let removed = state.applications().unenroll(&app, &email(&body.email)?).await?;
    Ok(ok("api.application.enroll.delete", serde_json::json!({ "removed": removed })))
}
