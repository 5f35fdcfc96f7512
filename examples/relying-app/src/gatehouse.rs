//! Gatehouse's v1 API for third-party applications, as this application uses it: one method per call.
//!
//! Success is `{"type": "<action>", "result": {…}}`; every failure is an HTTP error status with
//! `{"error": {"code", "ns", "message", "status"}}`, parsed into [`GatehouseError`].

use std::time::Duration;

use reqwest::{Method, StatusCode, Url};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::json;

use crate::config::ApiKey;

/// Calls that wait for the person (enrollment consent, a push to approve) are held up to 30 s by Gatehouse.
const DECISION_TIMEOUT: Duration = Duration::from_secs(40);
const QUICK_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Clone)]
pub struct Gatehouse {
    http: reqwest::Client,
    base: String,
    key: ApiKey,
}

#[derive(Debug, thiserror::Error)]
pub enum GatehouseError {
    #[error("the person denied the request on their device")]
    ApprovalDenied,
    #[error("after a denial only a code from the device is accepted")]
    TokenRequired,
    #[error("the code or token is wrong, used or expired")]
    TokenInvalid,
    #[error("the person did not answer in time")]
    ApprovalTimeout,
    #[error("the person's authenticator is locked")]
    UserLocked,
    #[error("the person is not enrolled for this application")]
    NotEnrolled,
    #[error("the person denied the enrollment")]
    EnrollmentDenied,
    /// Any other v1 error: a bad key, bad input, a rate limit, trouble on Gatehouse's side.
    #[error("Gatehouse answered {status} {code}: {message}")]
    Other { status: u16, code: String, message: String },
    /// No v1 answer at all: unreachable, timed out, or a body of another shape.
    #[error("Gatehouse is unavailable: {0}")]
    Unavailable(String),
}

impl GatehouseError {
    fn from_v1(status: StatusCode, body: ErrorBody) -> Self {
        match body.error.code.as_str() {
            "APPROVAL_DENIED" => Self::ApprovalDenied,
            "TOKEN_REQUIRED" => Self::TokenRequired,
            "TOKEN_INVALID" => Self::TokenInvalid,
            "APPROVAL_TIMEOUT" => Self::ApprovalTimeout,
            "USER_LOCKED" => Self::UserLocked,
            "NOT_ENROLLED" => Self::NotEnrolled,
            "ENROLLMENT_DENIED" => Self::EnrollmentDenied,
            _ => Self::Other { status: status.as_u16(), code: body.error.code, message: body.error.message },
        }
    }
}

#[derive(Deserialize)]
struct ErrorBody {
    error: ErrorDetail,
}

#[derive(Deserialize)]
struct ErrorDetail {
    code: String,
    #[serde(default)]
    message: String,
}

#[derive(Deserialize)]
struct Success<T> {
    #[serde(rename = "type")]
    kind: String,
    result: T,
}

/// What the widget on the two-step page needs: a ticket naming the person, for this application.
#[derive(Debug, Deserialize)]
pub struct WidgetTicket {
    pub ticket: String,
    /// The application's public id.
    pub app: String,
}

/// An approved login (or a right code): a one-time token to exchange with [`Gatehouse::token`].
#[derive(Debug, Deserialize)]
pub struct Approval {
    pub token: String,
}

/// Whom an access token was issued for.
#[derive(Debug, Deserialize)]
pub struct TokenOwner {
    pub unloq_id: String,
    pub email: Option<String>,
    #[serde(default)]
    pub approval_id: Option<String>,
    #[serde(default)]
    pub method: Option<String>,
}

#[derive(Debug, Deserialize)]
pub struct Enrollment {
    /// An SVG data URL to scan; `None` when the person approved the enrollment on a device they already had.
    pub qr_url: Option<String>,
    /// The same activation for an authenticator that reads text (`gatehouse authenticator enroll URI`).
    #[serde(default)]
    pub activation_uri: Option<String>,
    #[serde(default)]
    pub activation_code: Option<String>,
    #[serde(default)]
    pub expire_at: Option<String>,
}

#[derive(Deserialize)]
struct Enrolled {
    enrolled: bool,
}

#[derive(Deserialize)]
struct Removed {
    removed: bool,
}

impl Gatehouse {
    pub fn new(base: &str, key: ApiKey) -> anyhow::Result<Self> {
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(5))
            .timeout(DECISION_TIMEOUT)
            .redirect(reqwest::redirect::Policy::none())
            .build()?;
        Ok(Self { http, base: base.trim_end_matches('/').to_owned(), key })
    }

    /// Where the person's browser loads the widget from.
    pub fn widget_script_url(&self) -> String {
        format!("{}/v1/widget.js", self.base)
    }

    /// A ticket for the widget to ask `email` to approve a login from `ip`.
    pub async fn widget_ticket(&self, email: &str, ip: &str) -> Result<WidgetTicket, GatehouseError> {
        let body = json!({ "email": email, "ip": ip });
        self.call(Method::POST, "/v1/widget/ticket", Some(body), QUICK_TIMEOUT, "api.application.widget.ticket").await
    }

    /// Asks the person to approve on their device (waits for the decision), or, given `code`, checks a code
    /// from the device instead: a typed code means the person has the device in hand, no push is needed.
    pub async fn authenticate(&self, email: &str, ip: &str, code: Option<&str>) -> Result<Approval, GatehouseError> {
        let body = match code {
            Some(code) => json!({ "email": email, "ip": ip, "method": "OTP", "token": code }),
            None => json!({ "email": email, "ip": ip }),
        };
        self.call(
            Method::POST,
            "/v1/authenticate",
            Some(body),
            DECISION_TIMEOUT,
            "api.application.approval.authenticate",
        )
        .await
    }

    /// Redeems an access token (once): whom it was issued for.
    pub async fn token(&self, token: &str, sid: &str, ip: &str) -> Result<TokenOwner, GatehouseError> {
        let body = json!({ "token": token, "sid": sid, "ip": ip });
        self.call(Method::POST, "/v1/token", Some(body), QUICK_TIMEOUT, "api.application.approval.token").await
    }

    /// Starts enrolling `email`: a QR code to scan, or (someone with a Gatehouse device) their approval on it,
    /// waited for.
    pub async fn enroll(&self, email: &str) -> Result<Enrollment, GatehouseError> {
        let body = json!({ "email": email });
        self.call(Method::POST, "/v1/enroll", Some(body), DECISION_TIMEOUT, "api.application.enroll.user").await
    }

    /// Whether this application enrolled `email` and the person has an activated device.
    pub async fn enrolled(&self, email: &str) -> Result<bool, GatehouseError> {
        let query = form_urlencoded::Serializer::new(String::new()).append_pair("email", email).finish();
        let path = format!("/v1/enrolled?{query}");
        let answer: Enrolled =
            self.call(Method::GET, &path, None, QUICK_TIMEOUT, "api.application.enroll.check").await?;
        Ok(answer.enrolled)
    }

    /// Ends this application's enrollment of `email` (their devices stay theirs): whether there was one.
    pub async fn unenroll(&self, email: &str) -> Result<bool, GatehouseError> {
        let body = json!({ "email": email });
        let answer: Removed =
            self.call(Method::DELETE, "/v1/enroll", Some(body), QUICK_TIMEOUT, "api.application.enroll.delete").await?;
        Ok(answer.removed)
    }

    async fn call<T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        body: Option<serde_json::Value>,
        timeout: Duration,
        expected_type: &str,
    ) -> Result<T, GatehouseError> {
        let url = Url::parse(&format!("{}{path}", self.base))
            .map_err(|e| GatehouseError::Unavailable(format!("bad Gatehouse URL: {e}")))?;
        let mut request = self.http.request(method, url).bearer_auth(self.key.expose()).timeout(timeout);
        if let Some(body) = body {
            request = request.json(&body);
        }
        // Errors are logged: they name the path, never the query (an address), the key or the body.
        let route = path.split('?').next().unwrap_or(path);
        let unavailable =
            |e: reqwest::Error| GatehouseError::Unavailable(format!("{route}: {}", chain(&e.without_url())));
        let response = request.send().await.map_err(unavailable)?;
        let status = response.status();
        let bytes = response.bytes().await.map_err(unavailable)?;
        if !status.is_success() {
            return Err(match serde_json::from_slice::<ErrorBody>(&bytes) {
                Ok(body) => GatehouseError::from_v1(status, body),
                Err(_) => GatehouseError::Unavailable(format!("{route}: {status} without a v1 error body")),
            });
        }
        let success: Success<T> = serde_json::from_slice(&bytes)
            .map_err(|e| GatehouseError::Unavailable(format!("{route}: unexpected answer: {e}")))?;
        if success.kind != expected_type {
            return Err(GatehouseError::Unavailable(format!("{route}: answer of type {}", success.kind)));
        }
        Ok(success.result)
    }
}

/// An error with its causes ("error sending request: … Connection refused"): the top level alone says little.
fn chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}
