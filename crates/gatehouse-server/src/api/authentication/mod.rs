//! Authentication (`/rest/public/authentication/…`): application access starts an application's login flow;
//! calling the first step (password check, username) without one starts the default application's flow.
//! Success creates an authenticated session with a new cookie.

mod access;
mod password_check;
mod username;

use axum::http::{HeaderMap, Method};
use axum::response::Response;
use axum::routing::post;
use gatehouse_core::flow::Action;
use gatehouse_core::flow::session::FlowKind;

use super::factor_calls::{self, Login};
pub use super::flow_session::SESSION_COOKIE;
use super::routes::{Answer, Auth, Body, Doc, Routes};
use crate::errors::ApiError;
use crate::extract::{NoInput, OtpInput};
use crate::state::AppState;

const KIND: FlowKind = FlowKind::Authentication;

pub fn routes() -> Routes {
    let base = "/public/authentication";
    let flow = Auth::LoginFlow { start: false };
    let call = |summary| Doc::new(summary, flow, Answer::Flow);
    let otp = Body::of::<OtpInput>();
    let none = Body::of::<NoInput>();
    let p = |path: &str| format!("{base}/{path}");
    Routes::new()
        .at_both(
            Method::POST,
            &p("applications/{application_id}/access"),
            post(access::application),
            Doc::new(
                "Access an application: 200 once the session may, else 401 with the next step",
                Auth::LoginFlow { start: true },
                Answer::Flow,
            )
            .body(none),
        )
        .at_both(
            Method::POST,
            &p("default-application/access"),
            post(access::default_application),
            Doc::new("Access the default application", Auth::LoginFlow { start: true }, Answer::Flow).body(none),
        )
        .at_both(
            Method::POST,
            &p("password/check"),
            post(password_check::handler),
            Doc::new(
                "Check the password (without a running flow: starts the default application's flow)",
                Auth::LoginFlow { start: true },
                Answer::Flow,
            )
            .body(Body::of::<password_check::PasswordCheckRequest>()),
        )
        .at_both(
            Method::POST,
            &p("username/identify"),
            post(username::handler),
            Doc::new("Name the user (a username step)", Auth::LoginFlow { start: true }, Answer::Flow)
                .body(Body::of::<crate::api::public_self_service::IdentifyRequest>()),
        )
        .at_both(
            Method::POST,
            &p("otp/check"),
            post(factor_calls::totp_check::<Login>),
            call("Check a TOTP code").body(otp),
        )
        .at_both(
            Method::POST,
            &p("mtan/otp/check"),
            post(factor_calls::mtan_check::<Login>),
            call("Check the SMS code").body(otp),
        )
        .at_both(
            Method::POST,
            &p("mtan/otp/resend"),
            post(factor_calls::mtan_resend::<Login>),
            call("Send a new SMS code").body(none),
        )
        .at_both(
            Method::POST,
            &p("selection/options/retrieve"),
            post(factor_calls::retrieve_options::<Login>),
            call("The second factors to choose from").body(none),
        )
        .at_both(
            Method::POST,
            &p("selection/options/{option_id}/select"),
            post(factor_calls::select_option::<Login>),
            call("Choose a second factor").body(none),
        )
        .at_both(
            Method::POST,
            &p("app-2fa/status/poll"),
            post(factor_calls::app_poll::<Login>),
            call("Wait (long poll) for the authenticator's decision").body(none),
        )
        .at_both(
            Method::POST,
            &p("app-2fa/offline/challenge"),
            post(factor_calls::app_offline_challenge::<Login>),
            call("Switch to the offline code (QR challenge)").body(none),
        )
        .at_both(
            Method::POST,
            &p("app-2fa/offline/check"),
            post(factor_calls::app_offline_check::<Login>),
            call("Check the authenticator's offline code").body(otp),
        )
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
