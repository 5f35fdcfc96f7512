//! The end-user web pages (`/ui/…`): server-rendered HTML that works without JavaScript wherever a flow
//! allows, a second client of the flow engine and of the protected services — never a second implementation.
//! Small scripts (waiting for a push approval or a device, solving the CAPTCHA) are served from here.

mod account;
mod csrf;
mod flows;
mod page;
pub mod render;

use axum::Router;
use axum::http::header::{CACHE_CONTROL, CONTENT_TYPE};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;

use crate::state::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/", get(|| async { Redirect::to("/ui/app/auth/login") }))
        .route("/ui", get(|| async { Redirect::to("/ui/app/auth/login") }))
        .route("/ui/app/auth/login", get(flows::login_page).post(flows::login_post))
        .route("/ui/app/self-service/flow/{flow_id}", get(flows::self_service_page).post(flows::self_service_post))
        .route("/ui/app/registration", get(flows::default_registration_page))
        .route("/ui/app/registration/flow/{flow_id}", get(flows::registration_page).post(flows::registration_post))
        .route("/ui/app/account", get(account::show).post(account::post))
        .route("/ui/static/app.css", get(|| async { asset("text/css; charset=utf-8", render::APP_CSS.to_owned()) }))
        .route(
            "/ui/static/app.js",
            get(|| async { asset("text/javascript; charset=utf-8", render::APP_JS.to_owned()) }),
        )
        .route("/ui/static/brand.css", get(brand_css))
}

fn asset(content_type: &'static str, body: String) -> Response {
    let mut response = body.into_response();
    let h = response.headers_mut();
    h.insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    h.insert(CACHE_CONTROL, HeaderValue::from_static("public, max-age=300"));
    response
}

/// The accent colour of `ui.brand_color` (validated at start) as a stylesheet: the pages allow no inline style.
async fn brand_css(axum::extract::State(state): axum::extract::State<AppState>) -> Response {
    asset("text/css; charset=utf-8", format!(":root {{ --brand: {}; }}\n", state.config.ui.brand_color))
}

/// The error page for a path with no page.
pub(crate) fn not_found(state: &AppState, headers: &HeaderMap) -> Response {
    let ctx = page::Ctx::new(state, headers, None);
    let context = ctx.base(state, "page.error", false, minijinja::context! { message_key => "error.NOT_FOUND" });
    ctx.respond(state, StatusCode::NOT_FOUND, "error.html", context)
}
