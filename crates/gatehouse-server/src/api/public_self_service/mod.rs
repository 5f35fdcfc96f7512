//! Public self-service flows (`/rest/public/self-service/…`): select a flow, then drive it call by call.
//! The flow session travels in an HttpOnly cookie; only its keyed hash is stored.

mod abort;
mod acknowledge;
mod continuation;
mod email_otp_check;
mod email_otp_resend;
mod identify;
mod password_set;
mod secret_questions;
mod select;
mod sms_otp;

use axum::http::{HeaderMap, Method};
use axum::response::Response;
use axum::routing::{delete, post};
use gatehouse_core::flow::Action;
use gatehouse_core::flow::session::FlowKind;

pub(crate) use identify::IdentifyRequest;

use super::factor_calls::{self, SelfService};
use super::routes::{Answer, Auth, Body, Doc, Routes};
use crate::errors::ApiError;
use crate::extract::{NoInput, OtpInput};
use crate::state::AppState;

const KIND: FlowKind = FlowKind::PublicSelfService;

pub fn routes() -> Routes {
    let base = "/public/self-service";
    let flow = Auth::SelfServiceFlow { start: false };
    let call = |summary| Doc::new(summary, flow, Answer::Flow);
    let otp = Body::of::<OtpInput>();
    let none = Body::of::<NoInput>();
    let p = |path: &str| format!("{base}/{path}");
    Routes::new()
        .at_both(
            Method::POST,
            &p("flows/{flow_id}/select"),
            post(select::handler),
            Doc::new("Start a public self-service flow (new flow cookie)", Auth::Public, Answer::Flow).body(none),
        )
        .at(
            Method::DELETE,
            &p("flow"),
            delete(abort::handler),
            Doc::new("End the running flow", flow, Answer::NoContent),
        )
        .at_both(
            Method::POST,
            &p("username/identify"),
            post(identify::handler),
            Doc::new(
                "Identify the user (without a running flow: starts the legacy reset entry's flow)",
                Auth::SelfServiceFlow { start: true },
                Answer::Flow,
            )
            .body(Body::of::<IdentifyRequest>()),
        )
        .at_both(
            Method::POST,
            &p("verification/email/otp/check"),
            post(email_otp_check::handler),
            call("Check the email code").body(otp),
        )
        .at_both(
            Method::POST,
            &p("verification/email/otp/resend"),
            post(email_otp_resend::handler),
            call("Send a new email code").body(none),
        )
        .at_both(
            Method::POST,
            &p("verification/sms/otp/check"),
            post(sms_otp::check),
            call("Check the SMS code").body(otp),
        )
        .at_both(
            Method::POST,
            &p("verification/sms/otp/resend"),
            post(sms_otp::resend),
            call("Send a new SMS code").body(none),
        )
        .at_both(
            Method::POST,
            &p("selection/options/retrieve"),
            post(factor_calls::retrieve_options::<SelfService>),
            call("The options of the selection step").body(none),
        )
        .at_both(
            Method::POST,
            &p("selection/options/{option_id}/select"),
            post(factor_calls::select_option::<SelfService>),
            call("Choose an option").body(none),
        )
        .at_both(
            Method::POST,
            &p("otp/check"),
            post(factor_calls::totp_check::<SelfService>),
            call("Check a TOTP code").body(otp),
        )
        .at_both(
            Method::POST,
            &p("mtan/otp/check"),
            post(factor_calls::mtan_check::<SelfService>),
            call("Check the SMS approval code").body(otp),
        )
        .at_both(
            Method::POST,
            &p("mtan/otp/resend"),
            post(factor_calls::mtan_resend::<SelfService>),
            call("Send a new SMS approval code").body(none),
        )
        .at_both(
            Method::POST,
            &p("password/set"),
            post(password_set::handler),
            call("Set the new password").body(Body::of::<password_set::PasswordSetRequest>()),
        )
        .at_both(
            Method::POST,
            &p("flow-continuation/token/check"),
            post(continuation::handler),
            call("Check an email link's token").body(Body::of::<continuation::TokenRequest>()),
        )
        .at_both(
            Method::POST,
            &p("message/acknowledge"),
            post(acknowledge::handler),
            call("Acknowledge the message").body(none),
        )
        .at_both(
            Method::POST,
            &p("verification/secret-questions/check"),
            post(secret_questions::check),
            call("Answer the secret questions").body(Body::of::<secret_questions::AnswersRequest>()),
        )
        .at_both(
            Method::POST,
            &p("app-2fa/status/poll"),
            post(factor_calls::app_poll::<SelfService>),
            call("Wait (long poll) for the authenticator's decision").body(none),
        )
        .at_both(
            Method::POST,
            &p("app-2fa/offline/challenge"),
            post(factor_calls::app_offline_challenge::<SelfService>),
            call("Switch to the offline code (QR challenge)").body(none),
        )
        .at_both(
            Method::POST,
            &p("app-2fa/offline/check"),
            post(factor_calls::app_offline_check::<SelfService>),
            call("Check the authenticator's offline code").body(otp),
        )
}

/// Runs one call on the public self-service flow named by the request's cookie.
pub(crate) async fn run(
    state: &AppState,
    headers: &HeaderMap,
    ip: Option<String>,
    action: Action,
) -> Result<Response, ApiError> {
    super::flow_session::run(state, headers, ip, KIND, action).await
}
