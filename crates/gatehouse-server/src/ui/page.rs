//! What every page shares: the language (`?lang=`, a cookie, `Accept-Language`), the CSRF token, the security
//! headers of HTML (a strict Content-Security-Policy: scripts and styles only from Gatehouse, nothing inline, no
//! framing), and the answer of a flow call read back into what a template shows.

use std::collections::BTreeMap;

use axum::body::Body;
use axum::http::header::{CONTENT_TYPE, COOKIE, SET_COOKIE};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use minijinja::Value;
use serde_json::Map;

use super::render::LANGUAGES;
use crate::extract::{cookie, set_cookie, wants_secure_cookie};
use crate::state::AppState;

pub const LANG_COOKIE: &str = "gatehouse_lang";

pub const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
                       connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

/// One request's page settings.
pub struct Ctx {
    pub lang: String,
    pub csrf: String,
    pub secure: bool,
    /// Cookies to set with the answer (the CSRF cookie of a new browser, the chosen language, flow cookies).
    pub cookies: Vec<String>,
}

impl Ctx {
    pub fn new(state: &AppState, headers: &HeaderMap, lang_param: Option<&str>) -> Self {
        let secure = wants_secure_cookie(&state.config.server, headers);
        let (csrf, csrf_cookie) = super::csrf::token(state, headers, secure);
        let mut cookies: Vec<String> = csrf_cookie.into_iter().collect();
        let chosen = lang_param.filter(|l| LANGUAGES.contains(l));
        if let Some(l) = chosen {
            cookies.push(set_cookie(LANG_COOKIE, Some(l), secure));
        }
        let lang = chosen
            .map(str::to_owned)
            .or_else(|| cookie(headers, LANG_COOKIE, secure).filter(|l| LANGUAGES.contains(&l.as_str())))
            .or_else(|| accepted_language(headers))
            .unwrap_or_else(|| {
                let default = &state.config.messaging.default_language;
                if LANGUAGES.contains(&default.as_str()) { default.clone() } else { "en".into() }
            });
        Self { lang, csrf, secure, cookies }
    }

    /// The context every template gets, with `extra` on top.
    pub fn base(&self, state: &AppState, page_title: &str, needs_script: bool, extra: Value) -> Value {
        let ui = &state.config.ui;
        let other = LANGUAGES.iter().find(|l| **l != self.lang).copied().unwrap_or("en");
        minijinja::context! {
            lang => self.lang.clone(),
            other_lang => other,
            csrf => self.csrf.clone(),
            page_title => page_title,
            needs_script => needs_script,
            brand => minijinja::context! { name => ui.product_name.clone(), logo_url => ui.logo_url.clone() },
            ..extra
        }
    }

    /// An HTML answer with the page's headers and cookies.
    pub fn respond(&self, state: &AppState, status: StatusCode, template: &str, context: Value) -> Response {
        let html = match state.ui.render(template, &self.lang, context) {
            Ok(html) => html,
            Err(e) => {
                tracing::error!(template, error = %e, "a page template failed");
                return (StatusCode::INTERNAL_SERVER_ERROR, "the page could not be rendered").into_response();
            }
        };
        let mut response = (status, html).into_response();
        let h = response.headers_mut();
        h.insert(CONTENT_TYPE, HeaderValue::from_static("text/html; charset=utf-8"));
        h.insert("content-security-policy", HeaderValue::from_static(CSP));
        h.insert("x-frame-options", HeaderValue::from_static("DENY"));
        for c in &self.cookies {
            if let Ok(v) = HeaderValue::from_str(c) {
                h.append(SET_COOKIE, v);
            }
        }
        response
    }

    /// A redirect (303) carrying the page's cookies.
    pub fn redirect(&self, to: &str) -> Response {
        let mut response = Response::builder().status(StatusCode::SEE_OTHER).body(Body::empty()).unwrap_or_default();
        if let Ok(v) = HeaderValue::from_str(to) {
            response.headers_mut().insert(axum::http::header::LOCATION, v);
        }
        for c in &self.cookies {
            if let Ok(v) = HeaderValue::from_str(c) {
                response.headers_mut().append(SET_COOKIE, v);
            }
        }
        response
    }
}

/// The first supported language of `Accept-Language` (weights ignored: browsers list in order of preference).
fn accepted_language(headers: &HeaderMap) -> Option<String> {
    let header = headers.get(axum::http::header::ACCEPT_LANGUAGE)?.to_str().ok()?;
    header
        .split(',')
        .filter_map(|part| part.split(';').next())
        .map(|tag| tag.trim().split('-').next().unwrap_or("").to_ascii_lowercase())
        .find(|l| LANGUAGES.contains(&l.as_str()))
}

/// A flow call's answer as the pages use it.
#[derive(Debug, Default)]
pub struct FlowView {
    pub status: u16,
    pub step: Option<String>,
    pub attributes: Map<String, serde_json::Value>,
    pub errors: Vec<serde_json::Value>,
    pub lock_expiry: Option<String>,
    /// `Set-Cookie` values of the answer.
    pub cookies: Vec<String>,
}

impl FlowView {
    /// Reads back an answer of the REST layer (the same answer an API client gets).
    pub async fn read(response: Response) -> Self {
        let (parts, body) = response.into_parts();
        let cookies =
            parts.headers.get_all(SET_COOKIE).iter().filter_map(|v| v.to_str().ok()).map(str::to_owned).collect();
        let bytes = axum::body::to_bytes(body, 1 << 20).await.unwrap_or_default();
        let doc: serde_json::Value = serde_json::from_slice(&bytes).unwrap_or_default();
        let attributes = doc["data"]["attributes"].as_object().cloned().unwrap_or_default();
        let next =
            |v: &serde_json::Value| ["nextStep", "nextAuthStep"].iter().find_map(|k| v[*k].as_str().map(str::to_owned));
        let step = next(&doc["data"]["attributes"]).or_else(|| next(&doc["meta"]));
        let errors = doc["errors"].as_array().cloned().unwrap_or_default();
        let errors = errors
            .into_iter()
            .map(|e| {
                serde_json::json!({
                    "code": e["code"], "pointer": e["source"]["pointer"], "detail": e["meta"]["detail"],
                })
            })
            .collect();
        let lock_expiry = doc["meta"]["temporaryLockExpiry"].as_str().map(str::to_owned);
        Self { status: parts.status.as_u16(), step, attributes, errors, lock_expiry, cookies }
    }

    /// The flow is over with an error (403), or the call was refused before any flow ran (no step).
    pub fn ended(&self) -> bool {
        self.status == 403 || (self.status >= 400 && self.step.is_none())
    }

    pub fn completed(&self) -> bool {
        self.status == 200 && self.step.is_none()
    }

    /// Whether the answer set a non-empty cookie `name`.
    pub fn sets_cookie(&self, name: &str) -> bool {
        self.cookies.iter().any(|c| {
            c.split_once('=').is_some_and(|(n, rest)| {
                (n == name || n == format!("__Host-{name}")) && !rest.starts_with(';') && !rest.is_empty()
            })
        })
    }
}

/// `headers` as a browser would send them after receiving `set_cookies`: the next in-process call of the same
/// page sees the cookies the previous one set (a started flow's cookie, a renewed one).
pub fn carry(headers: &HeaderMap, set_cookies: &[String]) -> HeaderMap {
    let mut jar: BTreeMap<String, String> = headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(cookie::Cookie::split_parse)
        .filter_map(Result::ok)
        .map(|c| (c.name().to_owned(), c.value().to_owned()))
        .collect();
    for sc in set_cookies {
        if let Ok(c) = cookie::Cookie::parse(sc.as_str()) {
            let gone = c.value().is_empty() || c.max_age().is_some_and(|a| a.is_zero());
            if gone {
                jar.remove(c.name());
            } else {
                jar.insert(c.name().to_owned(), c.value().to_owned());
            }
        }
    }
    let mut out = headers.clone();
    out.remove(COOKIE);
    let line = jar.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join("; ");
    if let Ok(v) = HeaderValue::from_str(&line) {
        out.insert(COOKIE, v);
    }
    out
}

/// A form's fields (the last value of a repeated name wins).
pub type Form = BTreeMap<String, String>;
