//! The data step's calls: `POST …/registration/data/` (a flat JSON object of item names to values, plus the
//! CAPTCHA payload as `captcha` where the step asks for one; repeatable, partial), `…/registration/validate/`
//! (every issue of the step, 400 while there are any) and `…/registration/continue` (leaves the step).

use std::collections::BTreeMap;

use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::Response;
use gatehouse_core::flow::Action;
use serde::Deserialize;

use crate::errors::ApiError;
use crate::extract::{ClientIp, JsonBody, NoInput};
use crate::state::AppState;

/// Items one data call may carry (no flow has nearly as many).
const MAX_ITEMS: usize = 64;

/// Item names to values: a string sets an item, `null` or `""` removes it.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct DataRequest {
    /// The ALTCHA widget's payload (base64), on the first data call of a step with a CAPTCHA.
    #[serde(default)]
    pub captcha: Option<String>,
    #[serde(flatten)]
    pub items: BTreeMap<String, serde_json::Value>,
}

#[tracing::instrument(name = "registration.data", skip_all)]
pub async fn data(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    headers: HeaderMap,
    JsonBody(body): JsonBody<DataRequest>,
) -> Result<Response, ApiError> {
    if body.items.len() > MAX_ITEMS {
        return Err(ApiError::InvalidRequest { title: format!("at most {MAX_ITEMS} items per call"), pointer: None });
    }
    let values = body.items.into_iter().collect();
    super::run(&state, &headers, ip, Action::RegisterData { values, captcha: body.captcha }).await
}

#[tracing::instrument(name = "registration.validate", skip_all)]
pub async fn validate(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    headers: HeaderMap,
    JsonBody(_): JsonBody<NoInput>,
) -> Result<Response, ApiError> {
    super::run(&state, &headers, ip, Action::ValidateRegistration).await
}

#[tracing::instrument(name = "registration.continue", skip_all)]
pub async fn proceed(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    headers: HeaderMap,
    JsonBody(_): JsonBody<NoInput>,
) -> Result<Response, ApiError> {
    super::run(&state, &headers, ip, Action::ContinueRegistration).await
}
