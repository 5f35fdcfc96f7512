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

use axum::Router;
use axum::http::HeaderMap;
use axum::response::Response;
use axum::routing::{delete, post};
use gatehouse_core::flow::Action;
use gatehouse_core::flow::session::FlowKind;

pub(crate) use identify::IdentifyRequest;

use super::factor_calls::{self, SelfService};
use crate::errors::ApiError;
use crate::state::AppState;

const KIND: FlowKind = FlowKind::PublicSelfService;

pub fn routes() -> Router<AppState> {
    let base = "/public/self-service";
    let mut r = Router::new()
        .route(&format!("{base}/flows/{{flow_id}}/select"), post(select::handler))
        .route(&format!("{base}/flows/{{flow_id}}/select/"), post(select::handler))
        .route(&format!("{base}/flow"), delete(abort::handler));
    // The product documents some paths with a trailing slash and some without; accept both spellings.
    for (path, handler) in [
        ("username/identify", post(identify::handler)),
        ("verification/email/otp/check", post(email_otp_check::handler)),
        ("verification/email/otp/resend", post(email_otp_resend::handler)),
        ("verification/sms/otp/check", post(sms_otp::check)),
        ("verification/sms/otp/resend", post(sms_otp::resend)),
        ("selection/options/retrieve", post(factor_calls::retrieve_options::<SelfService>)),
        ("selection/options/{option_id}/select", post(factor_calls::select_option::<SelfService>)),
        ("otp/check", post(factor_calls::totp_check::<SelfService>)),
        ("mtan/otp/check", post(factor_calls::mtan_check::<SelfService>)),
        ("mtan/otp/resend", post(factor_calls::mtan_resend::<SelfService>)),
        ("password/set", post(password_set::handler)),
        ("flow-continuation/token/check", post(continuation::handler)),
        ("message/acknowledge", post(acknowledge::handler)),
        ("verification/secret-questions/check", post(secret_questions::check)),
        ("app-2fa/status/poll", post(factor_calls::app_poll::<SelfService>)),
        ("app-2fa/offline/challenge", post(factor_calls::app_offline_challenge::<SelfService>)),
        ("app-2fa/offline/check", post(factor_calls::app_offline_check::<SelfService>)),
    ] {
        r = r.route(&format!("{base}/{path}"), handler.clone()).route(&format!("{base}/{path}/"), handler);
    }
    r
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
