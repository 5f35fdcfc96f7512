//! Every error the API can answer, and its HTTP status — in one place.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use gatehouse_core::clock::{Clock, SystemClock};
use gatehouse_core::crypto::HashError;
use gatehouse_core::flow::{EngineError, ErrorCode, FlowError, NextStep};
use gatehouse_core::ports::StoreError;

use crate::documents;

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
    #[error("{code}: {title}")]
    Rejected { status: StatusCode, code: &'static str, title: String, pointer: Option<&'static str> },
    #[error("method not allowed")]
    MethodNotAllowed,
    #[error("password hashing overloaded")]
    Overloaded,
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
            Self::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// Machine code and human title; internal causes are logged, never returned.
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
            Self::Rejected { code, title, .. } => (code, title.clone()),
            Self::MethodNotAllowed => ("METHOD_NOT_ALLOWED", "this method is not allowed here".into()),
            Self::Overloaded => ("SERVICE_OVERLOADED", "the server is busy, retry shortly".into()),
            Self::Unavailable(_) => ("SERVICE_UNAVAILABLE", "the service is temporarily unavailable".into()),
            Self::Internal(_) => ("INTERNAL_ERROR", "an internal error occurred".into()),
        }
    }
}

impl From<EngineError> for ApiError {
    fn from(e: EngineError) -> Self {
        match e {
            EngineError::Hashing(HashError::Overloaded) => Self::Overloaded,
            EngineError::Store(s) => s.into(),
            other => Self::Internal(other.to_string()),
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
        let now = SystemClock.now_ms();
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
        response
    }
}
