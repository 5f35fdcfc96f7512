//! Every error the API can answer, and its HTTP status — in one place.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use std::sync::Arc;

use gatehouse_core::clock::{Clock, Millis, SystemClock};
use gatehouse_core::crypto::HashError;
use gatehouse_core::flow::{EngineError, ErrorCode, FlowError, NextStep};
use gatehouse_core::ports::StoreError;
use gatehouse_core::protected::ProtectedError;

use crate::documents;

tokio::task_local! {
    /// The server's clock, for the timestamps of error documents made where no state is at hand.
    static CLOCK: Arc<dyn Clock>;
}

/// Runs `f` with `clock` as the time of the error documents it produces (a layer does this for every request).
pub async fn with_clock<F: Future>(clock: Arc<dyn Clock>, f: F) -> F::Output {
    CLOCK.scope(clock, f).await
}

fn now() -> Millis {
    // Outside a request (never for an API answer) the system clock is all there is.
    CLOCK.try_with(|c| c.now_ms()).unwrap_or_else(|_| SystemClock.now_ms())
}

/// The layer that gives every request's error documents the server's (injected) clock.
pub async fn clock_scope(
    axum::extract::State(state): axum::extract::State<crate::state::AppState>,
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    with_clock(state.clock.clone(), next.run(req)).await
}

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// A flow outcome that is an error: 400 with a retry, 403 when the flow ended.
    #[error("flow error")]
    Flow {
        status: StatusCode,
        next: Option<(&'static str, NextStep)>,
        errors: Vec<FlowError>,
        lock_expiry: Option<i64>,
    },
    #[error("malformed JSON: {0}")]
    MalformedJson(String),
    #[error("invalid request: {title}")]
    InvalidRequest { title: String, pointer: Option<String> },
    #[error("content type must be application/json")]
    UnsupportedMediaType,
    #[error("request body too large")]
    PayloadTooLarge,
    #[error("missing X-Same-Domain header")]
    CsrfHeaderMissing,
    #[error("no flow `{0}`")]
    FlowNotFound(String),
    #[error("no such application")]
    ApplicationNotFound,
    #[error("no such resource")]
    NotFound,
    #[error("not authenticated")]
    NotAuthenticated,
    /// An endpoint-specific refusal with its own code.
    #[error("{code:?}: {title}")]
    Rejected { status: StatusCode, code: ErrorCode, title: String, pointer: Option<&'static str> },
    #[error("method not allowed")]
    MethodNotAllowed,
    #[error("password hashing overloaded")]
    Overloaded,
    /// Too many calls from one address or about one account: 429 with `Retry-After`.
    #[error("rate limited")]
    RateLimited { retry_after_secs: u64 },
    #[error("service unavailable: {0}")]
    Unavailable(String),
    #[error("internal error: {0}")]
    Internal(String),
}

impl ApiError {
    pub fn flow(code: ErrorCode) -> Self {
        let status = match code {
            ErrorCode::FlowSessionExpired => StatusCode::FORBIDDEN,
            _ => StatusCode::BAD_REQUEST,
        };
        Self::Flow { status, next: None, errors: vec![FlowError::new(code)], lock_expiry: None }
    }

    fn status(&self) -> StatusCode {
        match self {
            Self::Flow { status, .. } => *status,
            Self::MalformedJson(_) | Self::InvalidRequest { .. } => StatusCode::BAD_REQUEST,
            Self::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Self::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            Self::CsrfHeaderMissing => StatusCode::FORBIDDEN,
            Self::FlowNotFound(_) | Self::ApplicationNotFound | Self::NotFound => StatusCode::NOT_FOUND,
            Self::NotAuthenticated => StatusCode::UNAUTHORIZED,
            Self::Rejected { status, .. } => *status,
            Self::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            Self::Overloaded | Self::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            Self::RateLimited { .. } => StatusCode::TOO_MANY_REQUESTS,
            Self::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// Machine code and human title; internal causes are logged, never returned. Every code is in
    /// [`REQUEST_ERROR_CODES`].
    fn code_and_title(&self) -> (&'static str, String) {
        match self {
            Self::Flow { .. } => ("", String::new()),
            Self::MalformedJson(why) => ("INVALID_JSON", format!("the body is not valid JSON: {why}")),
            Self::InvalidRequest { title, .. } => ("INVALID_REQUEST", title.clone()),
            Self::UnsupportedMediaType => ("UNSUPPORTED_MEDIA_TYPE", "send Content-Type: application/json".into()),
            Self::PayloadTooLarge => ("PAYLOAD_TOO_LARGE", "the request body is too large".into()),
            Self::CsrfHeaderMissing => {
                ("CSRF_HEADER_MISSING", "state-changing requests need the X-Same-Domain header".into())
            }
            Self::FlowNotFound(id) => ("FLOW_NOT_FOUND", format!("there is no flow `{id}`")),
            Self::ApplicationNotFound => ("APPLICATION_NOT_FOUND", "there is no such application".into()),
            Self::NotFound => ("NOT_FOUND", "no such resource".into()),
            Self::NotAuthenticated => ("NOT_AUTHENTICATED", "this call needs an authenticated session".into()),
            Self::Rejected { code, title, .. } => (code.as_str(), title.clone()),
            Self::MethodNotAllowed => ("METHOD_NOT_ALLOWED", "this method is not allowed here".into()),
            Self::Overloaded => ("SERVICE_OVERLOADED", "the server is busy, retry shortly".into()),
            Self::RateLimited { retry_after_secs } => {
                ("RATE_LIMITED", format!("too many attempts, retry in {retry_after_secs} s"))
            }
            Self::Unavailable(_) => ("SERVICE_UNAVAILABLE", "the service is temporarily unavailable".into()),
            Self::Internal(_) => ("INTERNAL_ERROR", "an internal error occurred".into()),
        }
    }
}

/// The codes of errors about a request rather than a flow (listed in the OpenAPI document with the flow codes).
pub const REQUEST_ERROR_CODES: &[&str] = &[
    "INVALID_JSON",
    "INVALID_REQUEST",
    "UNSUPPORTED_MEDIA_TYPE",
    "PAYLOAD_TOO_LARGE",
    "CSRF_HEADER_MISSING",
    "FLOW_NOT_FOUND",
    "APPLICATION_NOT_FOUND",
    "NOT_FOUND",
    "NOT_AUTHENTICATED",
    "METHOD_NOT_ALLOWED",
    "SERVICE_OVERLOADED",
    "RATE_LIMITED",
    "SERVICE_UNAVAILABLE",
    "INTERNAL_ERROR",
];

impl From<EngineError> for ApiError {
    fn from(e: EngineError) -> Self {
        match e {
            EngineError::Hashing(HashError::Overloaded) => Self::Overloaded,
            EngineError::Store(s) => s.into(),
            other => Self::Internal(other.to_string()),
        }
    }
}

impl From<ProtectedError> for ApiError {
    fn from(e: ProtectedError) -> Self {
        let rejected = |status, code: ErrorCode, title: &str, pointer| Self::Rejected {
            status,
            code,
            title: title.to_owned(),
            pointer,
        };
        match e {
            ProtectedError::Wrong { code, pointer } => {
                let title = match code {
                    ErrorCode::OldPasswordWrong => "the current password is wrong",
                    ErrorCode::OtpWrong => "the code does not match",
                    ErrorCode::PasswordWrong => "the password is wrong",
                    _ => "the answer is wrong",
                };
                rejected(StatusCode::BAD_REQUEST, code, title, Some(pointer))
            }
            ProtectedError::Locked => {
                rejected(StatusCode::FORBIDDEN, ErrorCode::UserLocked, "the account is locked", None)
            }
            ProtectedError::StepUpRequired => rejected(
                StatusCode::FORBIDDEN,
                ErrorCode::ReauthenticationRequired,
                "confirm your password first (POST /rest/protected/self-service/reauthenticate/)",
                None,
            ),
            ProtectedError::Conflict(code) => {
                let title = match code {
                    ErrorCode::TotpAlreadyEnrolled => "remove the current authenticator first",
                    _ => "this does not fit the account's current state",
                };
                rejected(StatusCode::CONFLICT, code, title, None)
            }
            ProtectedError::NotReady(code) => {
                let title = match code {
                    ErrorCode::NoPendingEnrollment => "start an enrollment first (or again: it expired)",
                    _ => "a previous step is missing",
                };
                rejected(StatusCode::BAD_REQUEST, code, title, None)
            }
            ProtectedError::Policy(details) => Self::Rejected {
                status: StatusCode::BAD_REQUEST,
                code: ErrorCode::PasswordPolicyViolated,
                title: details.join(", "),
                pointer: Some("/newPassword"),
            },
            ProtectedError::Invalid { pointer, message } => {
                Self::InvalidRequest { title: message, pointer: Some(pointer) }
            }
            ProtectedError::NotFound => Self::NotFound,
            ProtectedError::Store(s) => s.into(),
            ProtectedError::Hashing(HashError::Overloaded) => Self::Overloaded,
            ProtectedError::Hashing(h) => Self::Internal(h.to_string()),
            ProtectedError::Internal(why) => Self::Internal(why),
        }
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Unavailable(why) => Self::Unavailable(why),
            other => Self::Internal(other.to_string()),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status();
        let now = now();
        match &self {
            Self::Internal(why) => tracing::error!(error = %why, "request failed"),
            Self::Unavailable(why) => tracing::warn!(error = %why, "dependency unavailable"),
            _ => {}
        }
        let body = match &self {
            Self::Flow { next, errors, lock_expiry, .. } => documents::flow_errors(
                now,
                next.as_ref().map(|(attr, step)| (*attr, step.as_str())),
                *lock_expiry,
                errors,
            ),
            Self::InvalidRequest { pointer, .. } => {
                let (code, title) = self.code_and_title();
                documents::request_error(now, code, &title, pointer.as_deref())
            }
            Self::Rejected { pointer, .. } => {
                let (code, title) = self.code_and_title();
                documents::request_error(now, code, &title, *pointer)
            }
            _ => {
                let (code, title) = self.code_and_title();
                documents::request_error(now, code, &title, None)
            }
        };
        let mut response = (status, axum::Json(body)).into_response();
        if matches!(self, Self::Overloaded | Self::Unavailable(_)) {
            response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        }
        if let Self::RateLimited { retry_after_secs } = self
            && let Ok(v) = HeaderValue::from_str(&retry_after_secs.to_string())
        {
            response.headers_mut().insert(header::RETRY_AFTER, v);
        }
        response
    }
}
