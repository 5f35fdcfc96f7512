//! `POST /rest/public/user-self-registration/{flowId}/select/` — starts a registration flow and hands out its
//! session cookie. When its first step asks for a CAPTCHA, the answer carries the challenge (`captcha`).

use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::response::Response;

use super::KIND;
use crate::api::flow_session;
use crate::errors::ApiError;
use crate::extract::{ClientIp, JsonBody, NoInput};
use crate::state::AppState;

#[tracing::instrument(name = "registration.select", skip_all, fields(flow_id = %flow_id))]
pub async fn handler(
    State(state): State<AppState>,
    Path(flow_id): Path<String>,
    ClientIp(ip): ClientIp,
    headers: HeaderMap,
    JsonBody(_): JsonBody<NoInput>,
) -> Result<Response, ApiError> {
    crate::api::limits::client(&state, ip.as_deref()).await?;
    Ok(flow_session::start(&state, &headers, ip, KIND, &flow_id, None, None).await?.response)
}
