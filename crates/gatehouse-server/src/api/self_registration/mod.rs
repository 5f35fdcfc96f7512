//! Self-registration flows (`/rest/public/user-self-registration/…`): optionally select a flow, then send data,
//! verify the address, choose a password… call by call. The flow session travels in its own HttpOnly cookie.
//! Without `select`, the first data call starts the configured default flow.

mod acknowledge;
mod activation;
mod captcha;
mod data;
mod password;
mod select;
mod verification;

use axum::http::{HeaderMap, Method};
use axum::response::Response;
use axum::routing::post;
use gatehouse_core::flow::Action;
use gatehouse_core::flow::session::FlowKind;

use super::routes::{Answer, Auth, Body, Doc, Routes};
use crate::errors::ApiError;
use crate::extract::{NoInput, OtpInput};
use crate::state::AppState;

const KIND: FlowKind = FlowKind::SelfRegistration;

pub fn routes() -> Routes {
    let flow = Auth::RegistrationFlow { start: false };
    let call = |summary| Doc::new(summary, flow, Answer::Flow);
    let none = Body::of::<NoInput>();
    let otp = Body::of::<OtpInput>();
    let p = |path: &str| format!("/public/user-self-registration/{path}");
    Routes::new()
        .at_both(
            Method::POST,
            &p("{flow_id}/select"),
            post(select::handler),
            Doc::new(
                "Start a registration flow (new flow cookie; the answer may carry a CAPTCHA)",
                Auth::Public,
                Answer::Flow,
            )
            .body(none),
        )
        .at_both(
            Method::POST,
            &p("registration/data"),
            post(data::data),
            Doc::new(
                "Send data items (partial updates; without a running flow: starts the default flow)",
                Auth::RegistrationFlow { start: true },
                Answer::Flow,
            )
            .body(Body::of::<data::DataRequest>()),
        )
        .at_both(
            Method::POST,
            &p("registration/validate"),
            post(data::validate),
            call("List every issue of the current data step").body(none),
        )
        .at_both(
            Method::POST,
            &p("registration/continue"),
            post(data::proceed),
            call("Leave the current data step").body(none),
        )
        .at_both(
            Method::POST,
            &p("registration/captcha"),
            post(captcha::handler),
            call("A new CAPTCHA challenge for the current data step").body(none),
        )
        .at_both(
            Method::POST,
            &p("verification/email/otp/check"),
            post(verification::email_check),
            call("Check the email verification code").body(otp),
        )
        .at_both(
            Method::POST,
            &p("verification/email/otp/resend"),
            post(verification::email_resend),
            call("Send a new email verification code").body(none),
        )
        .at_both(
            Method::POST,
            &p("verification/phone/otp/check"),
            post(verification::phone_check),
            call("Check the phone verification code").body(otp),
        )
        .at_both(
            Method::POST,
            &p("verification/phone/otp/resend"),
            post(verification::phone_resend),
            call("Send a new phone verification code").body(none),
        )
        .at_both(
            Method::POST,
            &p("registration/password"),
            post(password::handler),
            call("Choose the password").body(Body::of::<password::PasswordRequest>()),
        )
        .at_both(
            Method::POST,
            &p("app-2fa/activation/poll"),
            post(activation::handler),
            call("Whether the authenticator enrolled during registration has activated").body(none),
        )
        .at_both(
            Method::POST,
            &p("acknowledge"),
            post(acknowledge::handler),
            call("Acknowledge the message").body(none),
        )
}

/// Runs one call on the registration flow named by the request's cookie.
pub(crate) async fn run(
    state: &AppState,
    headers: &HeaderMap,
    ip: Option<String>,
    action: Action,
) -> Result<Response, ApiError> {
    super::flow_session::run(state, headers, ip, KIND, action).await
}
