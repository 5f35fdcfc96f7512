//! Calls that need an authenticated session (`/rest/protected/…`); without one they answer 401.

pub(crate) mod devices;
mod password_change;
mod phone;
mod reauthenticate;
mod secret_questions;
mod session;
mod totp;

use axum::Router;
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::routing::{delete, get, post};
use gatehouse_core::flow::SESSION_TOKEN_PURPOSE;
use gatehouse_core::ports::AuthSessionRecord;
use gatehouse_core::user::User;

use super::flow_session::SESSION_COOKIE;
use crate::errors::ApiError;
use crate::extract::cookie;
use crate::state::AppState;

pub fn routes() -> Router<AppState> {
    let base = "/protected";
    let mut r = Router::new()
        .route(&format!("{base}/session"), get(session::show).delete(session::logout))
        .route(&format!("{base}/self-service/totp"), delete(totp::remove))
        .route(&format!("{base}/self-service/secret-questions"), get(secret_questions::show))
        .route(&format!("{base}/self-service/secret-questions/"), get(secret_questions::show))
        .route(&format!("{base}/self-service/app-2fa/devices"), get(devices::list))
        .route(&format!("{base}/self-service/app-2fa/devices/{{id}}"), delete(devices::remove));
    for (path, handler) in [
        ("self-service/totp/enroll", post(totp::enroll)),
        ("self-service/totp/confirm", post(totp::confirm)),
        ("self-service/phone", post(phone::set)),
        ("self-service/reauthenticate", post(reauthenticate::handler)),
        ("self-service/secret-questions/answers", post(secret_questions::set)),
        ("self-service/password/change", post(password_change::handler)),
        ("self-service/app-2fa/activation", post(devices::activation)),
        ("self-service/app-2fa/devices/{id}/rename", post(devices::rename)),
    ] {
        r = r.route(&format!("{base}/{path}"), handler.clone()).route(&format!("{base}/{path}/"), handler);
    }
    r
}

/// The authenticated user of a request (extracting it touches the session).
pub struct Authenticated {
    pub session: AuthSessionRecord,
    pub user: User,
}

impl FromRequestParts<AppState> for Authenticated {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        Self::from_headers(&parts.headers, state).await
    }
}

impl Authenticated {
    /// The authenticated session named by the session cookie in `headers` (touching it), and its user.
    pub(crate) async fn from_headers(headers: &axum::http::HeaderMap, state: &AppState) -> Result<Self, ApiError> {
        let secure = crate::extract::wants_secure_cookie(&state.config.server, headers);
        let token = cookie(headers, SESSION_COOKIE, secure).ok_or(ApiError::NotAuthenticated)?;
        let now = state.clock.now_ms();
        let idle = i64::try_from(state.config.authentication.session.idle_timeout_seconds * 1000).unwrap_or(i64::MAX);
        let hash = state.key.hash_secret(SESSION_TOKEN_PURPOSE, &token);
        let session =
            state.store.touch_auth_session(&hash, now, now - idle).await?.ok_or(ApiError::NotAuthenticated)?;
        let user = state.store.get_user(&session.user_id).await?.ok_or(ApiError::NotAuthenticated)?;
        // A lock ends every session of the user.
        if user.locked {
            return Err(ApiError::NotAuthenticated);
        }
        Ok(Self { session, user })
    }
}

impl Authenticated {
    /// The user and session, as the protected services see them.
    pub fn me(&self) -> gatehouse_core::protected::Me<'_> {
        gatehouse_core::protected::Me {
            user: &self.user,
            session_id: &self.session.id,
            ip: None,
            authenticated_at: self.session.authenticated_at,
        }
    }
}
