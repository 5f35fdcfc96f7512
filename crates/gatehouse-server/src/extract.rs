//! Request decoding: JSON bodies with precise errors, the CSRF header, the flow cookie, the client address.

use std::net::SocketAddr;

use axum::body::Bytes;
use axum::extract::{ConnectInfo, FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{HeaderMap, Method, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde::de::DeserializeOwned;

use crate::errors::ApiError;

/// A JSON body: requires `Content-Type: application/json`, reports where a field is missing or mistyped.
/// An empty body counts as `{}` so that calls without input (select, resend) need not send one.
pub struct JsonBody<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for JsonBody<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        if !is_json(req.headers()) {
            return Err(ApiError::UnsupportedMediaType);
        }
        let bytes = Bytes::from_request(req, state).await.map_err(|rejection| {
            if rejection.status() == axum::http::StatusCode::PAYLOAD_TOO_LARGE {
                ApiError::PayloadTooLarge
            } else {
                ApiError::InvalidRequest { title: rejection.body_text(), pointer: None }
            }
        })?;
        let text: &[u8] = if bytes.iter().all(u8::is_ascii_whitespace) { b"{}" } else { &bytes };
        let document: serde_json::Value =
            serde_json::from_slice(text).map_err(|e| ApiError::MalformedJson(e.to_string()))?;
        if !document.is_object() {
            return Err(ApiError::InvalidRequest { title: "the body must be a JSON object".into(), pointer: None });
        }
        let value = serde_path_to_error::deserialize(document).map_err(|e| {
            let path = e.path().to_string();
            let pointer = if path == "." { None } else { Some(format!("/{}", path.replace('.', "/"))) };
            ApiError::InvalidRequest { title: e.inner().to_string(), pointer }
        })?;
        Ok(Self(value))
    }
}

fn is_json(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|mime| mime.trim().eq_ignore_ascii_case("application/json"))
}

/// CSRF: every state-changing call must carry a non-empty `X-Same-Domain` header, which a cross-site form
/// cannot send and a cross-origin script can only send after a CORS preflight.
pub async fn require_same_domain(req: Request, next: Next) -> Response {
    let changes_state = !matches!(*req.method(), Method::GET | Method::HEAD | Method::OPTIONS);
    let present = req.headers().get("x-same-domain").is_some_and(|v| !v.as_bytes().is_empty());
    if changes_state && !present {
        return ApiError::CsrfHeaderMissing.into_response();
    }
    next.run(req).await
}

/// The peer address, as a string for the audit trail.
pub struct ClientIp(pub Option<String>);

impl FromRequestParts<crate::state::AppState> for ClientIp {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, state: &crate::state::AppState) -> Result<Self, Self::Rejection> {
        let peer = parts.extensions.get::<ConnectInfo<SocketAddr>>().map(|ConnectInfo(addr)| addr.ip().to_string());
        Ok(Self(peer.map(|peer| client_address(&peer, &parts.headers, &state.config.rate_limits.trusted_proxies))))
    }
}

/// The client's address: the peer, unless the peer is a trusted proxy — then the rightmost address in
/// `X-Forwarded-For` that is not a trusted proxy (anything left of it the client may have made up).
fn client_address(peer: &str, headers: &HeaderMap, trusted: &[String]) -> String {
    if !trusted.iter().any(|t| t == peer) {
        return peer.to_owned();
    }
    let forwarded: Vec<String> = headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|a| a.trim().to_owned())
        .filter(|a| a.parse::<std::net::IpAddr>().is_ok())
        .collect();
    forwarded.into_iter().rev().find(|a| !trusted.contains(a)).unwrap_or_else(|| peer.to_owned())
}

/// The name cookie `name` travels under: with the `__Host-` prefix when Secure, so that no other host (a
/// sibling subdomain) can plant or overwrite it.
fn wire_name(name: &str, secure: bool) -> String {
    if secure { format!("__Host-{name}") } else { name.to_owned() }
}

/// The value of cookie `name`, if the request has it (under its `__Host-` name when `secure`).
pub fn cookie(headers: &HeaderMap, name: &str, secure: bool) -> Option<String> {
    let name = wire_name(name, secure);
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(cookie::Cookie::split_parse)
        .filter_map(Result::ok)
        .find(|c| c.name() == name)
        .map(|c| c.value().to_owned())
}

/// Whether cookies must be marked `Secure` for this request.
pub fn wants_secure_cookie(config: &gatehouse_core::config::ServerConfig, headers: &HeaderMap) -> bool {
    config.secure_cookies
        || (config.trust_forwarded_proto
            && headers
                .get("x-forwarded-proto")
                .and_then(|v| v.to_str().ok())
                .is_some_and(|p| p.eq_ignore_ascii_case("https")))
}

/// `Set-Cookie` value for cookie `name`; `None` clears it. Always HttpOnly, SameSite=Strict and `Path=/`;
/// when Secure, named `__Host-<name>` (which browsers accept only from this host, over TLS, without Domain).
pub fn set_cookie(name: &'static str, value: Option<&str>, secure: bool) -> String {
    let mut c = cookie::Cookie::build((wire_name(name, secure), value.unwrap_or("").to_owned()))
        .path("/")
        .http_only(true)
        .same_site(cookie::SameSite::Strict)
        .secure(secure);
    if value.is_none() {
        c = c.max_age(cookie::time::Duration::ZERO);
    }
    c.build().to_string()
}

/// A login name as the flows take it: 1–256 characters once trimmed.
pub fn check_username(username: &str) -> Result<(), ApiError> {
    let length = username.trim().chars().count();
    if length == 0 || length > 256 {
        return Err(ApiError::InvalidRequest {
            title: "username must be 1–256 characters".into(),
            pointer: Some("/username".into()),
        });
    }
    Ok(())
}

/// The body of calls that take no input: empty or `{}`.
#[derive(Debug, serde::Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NoInput {}

/// `{"otp": "…"}`, the body of every code check.
#[derive(Debug, serde::Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct OtpInput {
    pub otp: String,
}

impl OtpInput {
    /// The code, refusing absurd lengths before any work is done.
    pub fn into_code(self) -> Result<String, ApiError> {
        if self.otp.chars().count() > 64 {
            return Err(ApiError::InvalidRequest { title: "otp is too long".into(), pointer: Some("/otp".into()) });
        }
        Ok(self.otp)
    }
}
