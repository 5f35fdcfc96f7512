//! The v1 API for third-party applications (`/v1/…`), in UNLOQ's shapes: `{"type", "result"}` on success,
//! `{"error": {"code", "ns", "message", "status"}}` on failure — bad input included. Calls authenticate with
//! `Authorization: Bearer <API key>`; each application sees only its own enrollments.

mod approvals;
mod authenticate;
mod enroll;
mod enrolled;
mod token;
mod widget;

use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use gatehouse_core::applications::{AppError, Applications};
use gatehouse_core::ports::{Application, StoreError};
use serde::de::DeserializeOwned;

use super::routes::{Answer, Auth, Body, Doc, Query, Routes};
use crate::state::AppState;

const NS: &str = "api.application";

pub fn routes() -> Routes {
    let doc = |summary, what| Doc::new(summary, Auth::AppKey, Answer::V1(what));
    widget::routes()
        .at(
            Method::POST,
            "/v1/enroll",
            post(enroll::enroll),
            doc(
                "Enroll a person for the application: a QR code to activate the authenticator, or (a Gatehouse user with a \
                 device) their approval on it, waited for up to 30 s",
                "api.application.enroll.user",
            )
            .body(Body::of::<enroll::EnrollRequest>()),
        )
        .at(
            Method::DELETE,
            "/v1/enroll",
            delete(enroll::remove),
            doc("End the application's enrollment of a person (their devices stay)", "api.application.enroll.delete")
                .body(Body::of::<enroll::RemoveRequest>()),
        )
        .at(
            Method::POST,
            "/v1/authenticate",
            post(authenticate::handler),
            doc(
                "Ask the person to approve a login on their device (waits up to 30 s), or check a code from it",
                "api.application.approval.authenticate",
            )
            .body(Body::of::<authenticate::AuthenticateRequest>()),
        )
        .at(
            Method::POST,
            "/v1/token",
            post(token::handler),
            doc("Exchange an access token (once, within a minute) for the person and the approval", "api.application.approval.token")
                .body(Body::of::<token::TokenRequest>()),
        )
        .at(
            Method::GET,
            "/v1/approvals",
            get(approvals::list),
            doc("The application's push requests, newest first, paged (`meta` counts)", "api.application.approval.find")
                .query(Query::of::<approvals::ApprovalsQuery>()),
        )
        .at(
            Method::GET,
            "/v1/approvals/{id}",
            get(approvals::read),
            doc("One of the application's push requests", "api.application.approval.read"),
        )
        .at(
            Method::GET,
            "/v1/enrolled",
            get(enrolled::handler),
            doc("Whether the application enrolled a person who has a device", "api.application.enroll.check")
                .query(Query::of::<enrolled::EnrolledQuery>()),
        )
}

/// A failed v1 call.
#[derive(Debug)]
pub enum V1Error {
    Unauthorized,
    Invalid(String),
    TooLarge,
    UnsupportedMediaType,
    Denied,
    Timeout,
    /// Another refusal: status, code, message.
    Coded(u16, &'static str, &'static str),
    RateLimited(u64),
    Unavailable(String),
    Internal(String),
}

impl From<StoreError> for V1Error {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Unavailable(why) => Self::Unavailable(why),
            other => Self::Internal(other.to_string()),
        }
    }
}

impl From<AppError> for V1Error {
    fn from(e: AppError) -> Self {
        match e {
            AppError::Invalid { field, message } => Self::Invalid(format!("{field}: {message}")),
            AppError::Store(s) => s.into(),
            other => Self::Internal(other.to_string()),
        }
    }
}

impl IntoResponse for V1Error {
    fn into_response(self) -> Response {
        let (status, code, message) = match &self {
            Self::Unauthorized => (StatusCode::UNAUTHORIZED, "UNAUTHORIZED", "a valid API key is needed".to_owned()),
            Self::Invalid(m) => (StatusCode::BAD_REQUEST, "INVALID_REQUEST", m.clone()),
            Self::TooLarge => (StatusCode::PAYLOAD_TOO_LARGE, "PAYLOAD_TOO_LARGE", "the body is too large".to_owned()),
            Self::UnsupportedMediaType => (
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "UNSUPPORTED_MEDIA_TYPE",
                "send Content-Type: application/json".to_owned(),
            ),
            Self::Denied => (StatusCode::FORBIDDEN, "ENROLLMENT_DENIED", "the person denied the request".to_owned()),
            Self::Timeout => (
                StatusCode::REQUEST_TIMEOUT,
                "APPROVAL_TIMEOUT",
                "the person did not answer in time; ask again".to_owned(),
            ),
            Self::Coded(status, code, message) => {
                (StatusCode::from_u16(*status).unwrap_or(StatusCode::BAD_REQUEST), *code, (*message).to_owned())
            }
            Self::RateLimited(_) => (StatusCode::TOO_MANY_REQUESTS, "RATE_LIMITED", "too many calls".to_owned()),
            Self::Unavailable(why) => {
                tracing::warn!(error = %why, "v1: database unavailable");
                (StatusCode::SERVICE_UNAVAILABLE, "SERVICE_UNAVAILABLE", "try again shortly".to_owned())
            }
            Self::Internal(why) => {
                tracing::error!(error = %why, "v1: internal error");
                (StatusCode::INTERNAL_SERVER_ERROR, "INTERNAL_ERROR", "something went wrong".to_owned())
            }
        };
        let body = serde_json::json!({
            "error": { "code": code, "ns": NS, "message": message, "status": status.as_u16().to_string() }
        });
        let mut response = (status, axum::Json(body)).into_response();
        let retry = match self {
            Self::RateLimited(s) => Some(s),
            Self::Unavailable(_) => Some(1),
            _ => None,
        };
        if let Some(s) = retry
            && let Ok(v) = header::HeaderValue::from_str(&s.to_string())
        {
            response.headers_mut().insert(header::RETRY_AFTER, v);
        }
        response
    }
}

/// A v1 success: `{"type": …, "result": …}`.
pub fn ok(kind: &str, result: serde_json::Value) -> Response {
    axum::Json(serde_json::json!({ "type": kind, "result": result })).into_response()
}

impl AppState {
    pub(crate) fn applications(&self) -> Applications<'_> {
        Applications {
            store: self.store.as_ref(),
            key: &self.key,
            random: self.random.as_ref(),
            clock: self.clock.as_ref(),
            config: &self.config,
        }
    }
}

/// The application whose API key the request carries. A wrong key counts on the caller's rate limit, so keys
/// cannot be guessed fast.
pub struct App(pub Application);

impl FromRequestParts<AppState> for App {
    type Rejection = V1Error;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, V1Error> {
        let key = parts
            .headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .map(str::trim);
        let app = match key {
            Some(key) => state.applications().authenticate(key).await?,
            None => None,
        };
        match app {
            Some(app) => Ok(Self(app)),
            None => {
                let ip = crate::extract::ClientIp::from_request_parts(parts, state).await.ok().and_then(|c| c.0);
                count_client(state, ip.as_deref()).await?;
                Err(V1Error::Unauthorized)
            }
        }
    }
}

/// Counts a call on the client address's rate limit: `RATE_LIMITED` once it is used up. (A failure of the
/// limiter itself does not refuse the call, as for the rest of the API's client limit.)
pub(crate) async fn count_client(state: &AppState, ip: Option<&str>) -> Result<(), V1Error> {
    match crate::api::limits::client(state, ip).await {
        Err(crate::errors::ApiError::RateLimited { retry_after_secs }) => Err(V1Error::RateLimited(retry_after_secs)),
        _ => Ok(()),
    }
}

/// Waits (holding nothing) until the approval is decided or expires, or the poll's time is up.
pub(crate) async fn await_decision(state: &AppState, id: &str, expires_at: Option<i64>) -> Result<(), V1Error> {
    crate::api::wait_for_approval(state, Some(id), expires_at).await.map_err(|e| match e {
        crate::errors::ApiError::Unavailable(why) => V1Error::Unavailable(why),
        other => V1Error::Internal(format!("{other:?}")),
    })
}

/// A JSON body whose problems answer in the v1 error shape.
pub struct V1Json<T>(pub T);

impl<T: DeserializeOwned> FromRequest<AppState> for V1Json<T> {
    type Rejection = V1Error;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, V1Error> {
        let json = req
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("application/json"));
        if !json {
            return Err(V1Error::UnsupportedMediaType);
        }
        let bytes = axum::body::Bytes::from_request(req, state).await.map_err(|_| V1Error::TooLarge)?;
        decode(&bytes).map(Self)
    }
}

/// A JSON body (empty reads as `{}`).
pub fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, V1Error> {
    let bytes: &[u8] = if bytes.iter().all(u8::is_ascii_whitespace) { b"{}" } else { bytes };
    serde_json::from_slice(bytes).map_err(|e| V1Error::Invalid(e.to_string()))
}

/// An email address as the v1 calls take it.
pub fn email(value: &str) -> Result<String, V1Error> {
    let value = value.trim();
    if value.len() > 254 || !gatehouse_core::registration::items::is_email(value) {
        return Err(V1Error::Invalid("email: not an email address".into()));
    }
    Ok(value.to_owned())
}

/// Stores `app`'s push request (which notifies the person's devices) and lists it among the application's.
pub(crate) async fn send_request(
    state: &AppState,
    app: &Application,
    approval: gatehouse_core::ports::Approval,
) -> Result<(), V1Error> {
    let id = approval.id.clone();
    state.store.apply(&[gatehouse_core::ports::Effect::CreateApproval(approval)]).await?;
    state.store.record_app_approval(&app.id, &id, state.clock.now_ms()).await?;
    Ok(())
}

/// Pushes `approval` (made by `app`) to the person's devices and waits up to `wait` for the decision: whether it
/// was approved. A request nobody answered in time is withdrawn (`APPROVAL_TIMEOUT`).
pub(crate) async fn push_and_wait(
    state: &AppState,
    app: &Application,
    approval: gatehouse_core::ports::Approval,
    wait: std::time::Duration,
) -> Result<bool, V1Error> {
    use gatehouse_core::ports::{ApprovalStatus, Effect};
    let id = approval.id.clone();
    send_request(state, app, approval).await?;
    let deadline = tokio::time::Instant::now() + wait;
    loop {
        await_decision(state, &id, None).await?;
        match state.store.get_approval(&id).await?.map_or(ApprovalStatus::Cancelled, |a| a.status) {
            ApprovalStatus::Approved => return Ok(true),
            ApprovalStatus::Denied => return Ok(false),
            ApprovalStatus::Pending if tokio::time::Instant::now() < deadline => {}
            _ => {
                state.store.apply(&[Effect::CancelApproval { id, at: state.clock.now_ms() }]).await?;
                return Err(V1Error::Timeout);
            }
        }
    }
}
