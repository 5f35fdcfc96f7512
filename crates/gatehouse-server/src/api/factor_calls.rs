//! The calls that exist alike in login and in public self-service — a selection, the second factors — written
//! once, for each area by its flow kind: `…/selection/options/retrieve`, `…/selection/options/{id}/select`,
//! `…/otp/check/` `{"otp"}` (TOTP), `…/mtan/otp/check/` `{"otp"}` and `…/mtan/otp/resend/` (SMS code),
//! `…/app-2fa/status/poll/` (long poll for the push decision), `…/app-2fa/offline/challenge/` and
//! `…/app-2fa/offline/check/` `{"otp"}` (offline QR code), under `/rest/public/authentication` and
//! `/rest/public/self-service`.

use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::response::Response;
use gatehouse_core::flow::{Action, FlowKind};

use crate::errors::ApiError;
use crate::extract::{ClientIp, JsonBody, NoInput, OtpInput};
use crate::state::AppState;

/// An area of the REST API and the kind of the flows it runs.
pub(crate) trait Area: Send + Sync + 'static {
    const KIND: FlowKind;
}

/// `/rest/public/authentication/…`
pub(crate) struct Login;

impl Area for Login {
    const KIND: FlowKind = FlowKind::Authentication;
}

/// `/rest/public/self-service/…`
pub(crate) struct SelfService;

impl Area for SelfService {
    const KIND: FlowKind = FlowKind::PublicSelfService;
}

async fn run<A: Area>(
    state: &AppState,
    headers: &HeaderMap,
    ip: Option<String>,
    action: Action,
) -> Result<Response, ApiError> {
    super::flow_session::run(state, headers, ip, A::KIND, action).await
}

#[tracing::instrument(name = "flow.selection_retrieve", skip_all, fields(kind = A::KIND.as_str()))]
pub async fn retrieve_options<A: Area>(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    headers: HeaderMap,
    JsonBody(_): JsonBody<NoInput>,
) -> Result<Response, ApiError> {
    run::<A>(&state, &headers, ip, Action::RetrieveOptions).await
}

#[tracing::instrument(name = "flow.selection_select", skip_all, fields(kind = A::KIND.as_str(), option = %option_id))]
pub async fn select_option<A: Area>(
    State(state): State<AppState>,
    Path(option_id): Path<String>,
    ClientIp(ip): ClientIp,
    headers: HeaderMap,
    JsonBody(_): JsonBody<NoInput>,
) -> Result<Response, ApiError> {
    run::<A>(&state, &headers, ip, Action::SelectOption { id: option_id }).await
}

#[tracing::instrument(name = "flow.totp_check", skip_all, fields(kind = A::KIND.as_str()))]
pub async fn totp_check<A: Area>(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    headers: HeaderMap,
    JsonBody(body): JsonBody<OtpInput>,
) -> Result<Response, ApiError> {
    let otp = body.into_code()?;
    run::<A>(&state, &headers, ip, Action::CheckTotp { otp }).await
}

#[tracing::instrument(name = "flow.mtan_check", skip_all, fields(kind = A::KIND.as_str()))]
pub async fn mtan_check<A: Area>(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    headers: HeaderMap,
    JsonBody(body): JsonBody<OtpInput>,
) -> Result<Response, ApiError> {
    let otp = body.into_code()?;
    run::<A>(&state, &headers, ip, Action::CheckMtan { otp }).await
}

#[tracing::instrument(name = "flow.mtan_resend", skip_all, fields(kind = A::KIND.as_str()))]
pub async fn mtan_resend<A: Area>(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    headers: HeaderMap,
    JsonBody(_): JsonBody<NoInput>,
) -> Result<Response, ApiError> {
    run::<A>(&state, &headers, ip, Action::ResendMtan).await
}

/// The long poll waits for the flow's request, holding nothing, then reads the decision.
#[tracing::instrument(name = "flow.app_poll", skip_all, fields(kind = A::KIND.as_str()))]
pub async fn app_poll<A: Area>(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    headers: HeaderMap,
    JsonBody(_): JsonBody<NoInput>,
) -> Result<Response, ApiError> {
    super::wait_for_decision(&state, &headers, A::KIND).await?;
    run::<A>(&state, &headers, ip, Action::PollApp).await
}

#[tracing::instrument(name = "flow.app_offline_challenge", skip_all, fields(kind = A::KIND.as_str()))]
pub async fn app_offline_challenge<A: Area>(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    headers: HeaderMap,
    JsonBody(_): JsonBody<NoInput>,
) -> Result<Response, ApiError> {
    run::<A>(&state, &headers, ip, Action::OfflineChallenge).await
}

#[tracing::instrument(name = "flow.app_offline_check", skip_all, fields(kind = A::KIND.as_str()))]
pub async fn app_offline_check<A: Area>(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    headers: HeaderMap,
    JsonBody(body): JsonBody<OtpInput>,
) -> Result<Response, ApiError> {
    let otp = body.into_code()?;
    run::<A>(&state, &headers, ip, Action::OfflineCheck { otp }).await
}
