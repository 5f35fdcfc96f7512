//! Authentication (`/rest/public/authentication/…`): application access starts an application's login flow;
//! calling the first step (password check, username) without one starts the default application's flow.
//! Success creates an authenticated session with a new cookie.

mod access;
mod password_check;
mod username;

use axum::Router;
use axum::http::HeaderMap;
use axum::response::Response;
use axum::routing::post;
use gatehouse_core::flow::Action;
use gatehouse_core::flow::session::FlowKind;

use super::factor_calls::{self, Login};
pub use super::flow_session::SESSION_COOKIE;
use crate::errors::ApiError;
use crate::state::AppState;

const KIND: FlowKind = FlowKind::Authentication;

pub fn routes() -> Router<AppState> {
    let base = "/public/authentication";
    let mut r = Router::new();
    for (path, handler) in [
        ("applications/{application_id}/access", post(access::application)),
        ("default-application/access", post(access::default_application)),
        ("password/check", post(password_check::handler)),
        ("username/identify", post(username::handler)),
        ("otp/check", post(factor_calls::totp_check::<Login>)),
        ("mtan/otp/check", post(factor_calls::mtan_check::<Login>)),
        ("mtan/otp/resend", post(factor_calls::mtan_resend::<Login>)),
        ("selection/options/retrieve", post(factor_calls::retrieve_options::<Login>)),
        ("selection/options/{option_id}/select", post(factor_calls::select_option::<Login>)),
        ("app-2fa/status/poll", post(factor_calls::app_poll::<Login>)),
        ("app-2fa/offline/challenge", post(factor_calls::app_offline_challenge::<Login>)),
        ("app-2fa/offline/check", post(factor_calls::app_offline_check::<Login>)),
    ] {
        r = r.route(&format!("{base}/{path}"), handler.clone()).route(&format!("{base}/{path}/"), handler);
    }
    r
}

/// Runs one call of the login flow named by the request's cookie.
pub(crate) async fn run(
    state: &AppState,
    headers: &HeaderMap,
    ip: Option<String>,
    action: Action,
) -> Result<Response, ApiError> {
    super::flow_session::run(state, headers, ip, KIND, action).await
}
