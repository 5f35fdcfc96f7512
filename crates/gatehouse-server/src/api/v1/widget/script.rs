//! `GET /v1/widget.js`: the widget script (`widget/widget.js`), for pages of any origin to include — it does
//! nothing by itself; its calls work only from an application's registered origin.

use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};

const SCRIPT: &str = include_str!("../../../../widget/widget.js");

#[tracing::instrument(name = "v1.widget.script", skip_all)]
pub async fn handler() -> Response {
    let mut response = SCRIPT.into_response();
    let h = response.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/javascript; charset=utf-8"));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("public, max-age=300"));
    h.insert("x-content-type-options", HeaderValue::from_static("nosniff"));
    // Pages of other origins load it as a script.
    h.insert("cross-origin-resource-policy", HeaderValue::from_static("cross-origin"));
    response
}
