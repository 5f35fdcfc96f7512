//! Calls that need an authenticated session (`/rest/protected/…`); without one they answer 401.

pub(crate) mod devices;
mod password_change;
mod phone;
mod reauthenticate;
mod secret_questions;
mod session;
mod totp;

use axum::extract::FromRequestParts;
use axum::http::Method;
use axum::http::request::Parts;
use axum::routing::{delete, get, post};
use gatehouse_core::flow::SESSION_TOKEN_PURPOSE;
use gatehouse_core::ports::AuthSessionRecord;
use gatehouse_core::user::User;

use super::flow_session::SESSION_COOKIE;
use super::routes::{Answer, Auth, Body, Doc, Routes};
use crate::errors::ApiError;
use crate::extract::NoInput;
use crate::extract::cookie;
use crate::state::AppState;

pub fn routes() -> Routes {
    let base = "/protected";
    let doc = |summary, answer| Doc::new(summary, Auth::Session, answer);
    let none = Body::of::<NoInput>();
    let p = |path: &str| format!("{base}/{path}");
    Routes::new()
        .at(
            Method::GET,
            &p("session"),
            get(session::show),
            doc("The session: user, factors, when it ends", Answer::Document("the session")),
        )
        .at(Method::DELETE, &p("session"), delete(session::logout), doc("Log out", Answer::NoContent))
        .at(
            Method::DELETE,
            &p("self-service/totp"),
            delete(totp::remove),
            doc("Remove TOTP (step-up needed)", Answer::NoContent),
        )
        .at_both(
            Method::GET,
            &p("self-service/secret-questions"),
            get(secret_questions::show),
            doc("The questions and which the user answered", Answer::Document("the questions")),
        )
        .at(
            Method::GET,
            &p("self-service/app-2fa/devices"),
            get(devices::list),
            doc("The user's authenticator devices", Answer::Document("devices")),
        )
        .at(
            Method::DELETE,
            &p("self-service/app-2fa/devices/{id}"),
            delete(devices::remove),
            doc("Remove a device", Answer::NoContent),
        )
        .at_both(
            Method::POST,
            &p("self-service/totp/enroll"),
            post(totp::enroll),
            doc("Start a TOTP enrollment (step-up needed)", Answer::Document("the secret and its otpauth URI"))
                .body(none),
        )
        .at_both(
            Method::POST,
            &p("self-service/totp/confirm"),
            post(totp::confirm),
            doc("Confirm the enrollment with a code", Answer::Document("confirmed"))
                .body(Body::of::<totp::ConfirmRequest>()),
        )
        .at_both(
            Method::POST,
            &p("self-service/phone"),
            post(phone::set),
            doc("Set the SMS phone (step-up needed)", Answer::Document("the phone"))
                .body(Body::of::<phone::PhoneRequest>()),
        )
        .at_both(
            Method::POST,
            &p("self-service/reauthenticate"),
            post(reauthenticate::handler),
            doc("Prove the password again (step-up)", Answer::Document("when"))
                .body(Body::of::<reauthenticate::ReauthenticateRequest>()),
        )
        .at_both(
            Method::POST,
            &p("self-service/secret-questions/answers"),
            post(secret_questions::set),
            doc("Replace the secret answers (step-up needed)", Answer::Document("the questions answered"))
                .body(Body::of::<secret_questions::AnswersRequest>()),
        )
        .at_both(
            Method::POST,
            &p("self-service/password/change"),
            post(password_change::handler),
            doc("Change the password", Answer::Document("changed")).body(Body::of::<password_change::ChangeRequest>()),
        )
        .at_both(
            Method::POST,
            &p("self-service/app-2fa/activation"),
            post(devices::activation),
            doc("Start an authenticator activation (step-up needed)", Answer::Document("the activation code and URI"))
                .body(none),
        )
        .at_both(
            Method::POST,
            &p("self-service/app-2fa/devices/{id}/rename"),
            post(devices::rename),
            doc("Rename a device", Answer::Document("the device")).body(Body::of::<devices::RenameRequest>()),
        )
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
