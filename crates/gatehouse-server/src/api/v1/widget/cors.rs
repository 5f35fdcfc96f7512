//! The widget's calls come from the application's pages: they are answered with CORS headers for the registered
//! origin only, and refused (403, no CORS headers — so the page cannot even read why) from anywhere else. A
//! forged `Origin` from outside a browser gains nothing either: the calls also need a ticket.

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use gatehouse_core::ports::Application;

use super::super::V1Error;
use crate::state::AppState;

/// The live application `app_id`, if `headers` show a call from its origin.
pub async fn allowed(state: &AppState, app_id: &str, headers: &HeaderMap) -> Result<Application, V1Error> {
    let refused = V1Error::Coded(403, "ORIGIN_REFUSED", "the widget runs only on the application's own origin");
    let origin = headers.get(header::ORIGIN).and_then(|v| v.to_str().ok()).map(str::to_ascii_lowercase);
    let Some(origin) = origin else { return Err(refused) };
    if app_id.len() > 64 {
        return Err(refused);
    }
    match state.store.application_by_id(app_id).await? {
        Some(app) if app.origin == origin => Ok(app),
        _ => Err(refused),
    }
}

/// `response`, readable by scripts of `app`'s origin.
pub fn allow(app: &Application, mut response: Response) -> Response {
    let h = response.headers_mut();
    if let Ok(origin) = HeaderValue::from_str(&app.origin) {
        h.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin);
    }
    h.append(header::VARY, HeaderValue::from_static("Origin"));
    response
}

/// `OPTIONS`: the browser asks whether the page may POST JSON here.
pub async fn preflight(State(state): State<AppState>, Path(app_id): Path<String>, headers: HeaderMap) -> Response {
    let method_ok = headers.get(header::ACCESS_CONTROL_REQUEST_METHOD).is_some_and(|m| m.as_bytes() == b"POST");
    match allowed(&state, &app_id, &headers).await {
        Ok(app) if method_ok => {
            let mut response = StatusCode::NO_CONTENT.into_response();
            let h = response.headers_mut();
            h.insert(header::ACCESS_CONTROL_ALLOW_METHODS, HeaderValue::from_static("POST"));
            h.insert(header::ACCESS_CONTROL_ALLOW_HEADERS, HeaderValue::from_static("content-type"));
            h.insert(header::ACCESS_CONTROL_MAX_AGE, HeaderValue::from_static("600"));
            allow(&app, response)
        }
        Ok(_) => V1Error::Invalid("only POST is allowed".into()).into_response(),
        Err(e) => e.into_response(),
    }
}

/// Runs a widget call for the application of the path: refused from another origin, answered (errors too) with
/// CORS headers for its own.
pub async fn answer<T, F, Fut>(state: &AppState, app_id: &str, headers: &HeaderMap, body: &Bytes, call: F) -> Response
where
    T: serde::de::DeserializeOwned,
    F: FnOnce(AppState, Application, T) -> Fut,
    Fut: Future<Output = Result<Response, V1Error>>,
{
    let app = match allowed(state, app_id, headers).await {
        Ok(app) => app,
        Err(e) => return e.into_response(),
    };
    let json = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    let result = if json { super::super::decode::<T>(body) } else { Err(V1Error::UnsupportedMediaType) };
    let response = match result {
        Ok(value) => call(state.clone(), app.clone(), value).await.unwrap_or_else(IntoResponse::into_response),
        Err(e) => e.into_response(),
    };
    allow(&app, response)
}
