//! `POST /v1/authenticate` `{"email", "method"?: "UNLOQ"|"OTP", "ip"?, "token"?, "generate_token"?, …context}` →
//! `{"type": "api.application.approval.authenticate", "result": {"unloq_id", "token"}}`.
//!
//! `UNLOQ` (the default) asks the person on their device — approve or deny, no number (server to server there is
//! no page to show one on); the device shows the application, the IP and the extra context — and waits up to
//! 30 s. A denial counts on the person's authenticator counter (at the device's decision) and from then on every
//! call needs `token`, a code from the device, until one succeeds: push fatigue stops at the first "no". `OTP`
//! checks such a code instead of asking. With `generate_token: false` the result carries the person's data
//! instead of an access token.

use std::collections::BTreeMap;
use std::time::Duration;

use axum::extract::State;
use axum::response::Response;
use gatehouse_core::applications::CodeCheck;
use gatehouse_core::ports::Application;
use gatehouse_core::user::User;
use serde::Deserialize;

use super::{App, V1Error, V1Json, email, ok};
use crate::state::AppState;

const DECISION_WAIT: Duration = Duration::from_secs(30);

#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct AuthenticateRequest {
    pub email: String,
    /// `UNLOQ` (a push to approve) or `OTP` (a code from the device in `token`).
    #[serde(default)]
    pub method: Option<String>,
    /// The address the person logs in from, shown on the device.
    #[serde(default)]
    pub ip: Option<String>,
    /// A code from the device: the answer of `OTP`, and needed by `UNLOQ` after a denial.
    #[serde(default)]
    pub token: Option<String>,
    #[serde(default)]
    pub generate_token: Option<bool>,
    /// Anything else is context shown on the device (strings, at most 16, each at most 256 characters).
    #[serde(flatten)]
    pub context: BTreeMap<String, serde_json::Value>,
}

/// The person's data an application may read.
pub(super) fn person_data(user: &User) -> serde_json::Value {
    serde_json::json!({
        "unloq_id": user.id,
        "email": user.context_item("email"),
        "first_name": user.context_item("givenname"),
        "last_name": user.context_item("surname"),
    })
}

fn context_of(body: &AuthenticateRequest) -> Result<serde_json::Value, V1Error> {
    if body.context.len() > 16 {
        return Err(V1Error::Invalid("at most 16 context values".into()));
    }
    let mut map = serde_json::Map::new();
    for (k, v) in &body.context {
        let text = v.as_str().filter(|t| t.chars().count() <= 256 && k.len() <= 64);
        let Some(text) = text else {
            return Err(V1Error::Invalid(format!("{k}: context values are strings of at most 256 characters")));
        };
        map.insert(k.clone(), serde_json::json!(text));
    }
    if let Some(ip) = &body.ip {
        if ip.len() > 64 {
            return Err(V1Error::Invalid("ip: at most 64 characters".into()));
        }
        map.insert("ip".into(), serde_json::json!(ip));
    }
    Ok(serde_json::Value::Object(map))
}

async fn code(state: &AppState, app: &Application, user: &User, token: &str) -> Result<(), V1Error> {
    match state.applications().check_device_code(app, user, token).await? {
        CodeCheck::Right => Ok(()),
        CodeCheck::Wrong => Err(V1Error::Coded(400, "TOKEN_INVALID", "the code is wrong or was used")),
        CodeCheck::Exhausted => Err(V1Error::Coded(403, "USER_LOCKED", "too many failed attempts")),
    }
}

#[tracing::instrument(name = "v1.authenticate", skip_all)]
pub async fn handler(
    State(state): State<AppState>,
    App(app): App,
    V1Json(body): V1Json<AuthenticateRequest>,
) -> Result<Response, V1Error> {
    let address = email(&body.email)?;
    let context = context_of(&body)?;
    let method = body.method.clone().unwrap_or_else(|| "UNLOQ".into()).to_ascii_uppercase();
    if method != "UNLOQ" && method != "OTP" {
        return Err(V1Error::Invalid("method: UNLOQ or OTP".into()));
    }
    let apps = state.applications();
    let enrolled = apps.enrolled(&app, &address).await?;
    let user = apps.person(&app, &address, false).await?.filter(|_| enrolled);
    let Some(user) = user else {
        return Err(V1Error::Coded(404, "NOT_ENROLLED", "this person is not enrolled for the application"));
    };
    if user.locked {
        return Err(V1Error::Coded(403, "USER_LOCKED", "the person's account is locked"));
    }
    let token_required = apps.token_required(&app, &user).await?;
    let approval_id = if method == "OTP" {
        code(&state, &app, &user, body.token.as_deref().unwrap_or_default()).await?;
        None
    } else {
        match (&body.token, token_required) {
            (Some(token), _) => code(&state, &app, &user, token).await?,
            (None, true) => {
                return Err(V1Error::Coded(403, "TOKEN_REQUIRED", "after a denial, send a code from the device"));
            }
            (None, false) => {}
        }
        Some(ask(&state, &app, &user, context).await?)
    };
    apps.decided(&app, &user, true).await?;
    if body.generate_token == Some(false) {
        return Ok(ok("api.application.approval.authenticate", person_data(&user)));
    }
    let token = apps.issue_token(&app, &user, approval_id.as_deref(), &method, body.ip.as_deref()).await?;
    Ok(ok("api.application.approval.authenticate", serde_json::json!({ "unloq_id": user.id, "token": token })))
}

/// Pushes the request and waits for the decision: the approval's id once approved.
async fn ask(state: &AppState, app: &Application, user: &User, context: serde_json::Value) -> Result<String, V1Error> {
    let wait_ms = i64::try_from(DECISION_WAIT.as_millis()).unwrap_or(30_000);
    let approval = state.applications().login_request(app, user, context, state.clock.now_ms() + wait_ms);
    let id = approval.id.clone();
    if super::push_and_wait(state, app, approval, DECISION_WAIT).await? {
        return Ok(id);
    }
    state.applications().decided(app, user, false).await?;
    Err(V1Error::Coded(403, "APPROVAL_DENIED", "the person denied the request"))
}
