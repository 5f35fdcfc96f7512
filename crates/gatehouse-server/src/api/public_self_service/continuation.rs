//! `POST /rest/public/self-service/flow-continuation/token/check/` — `{"token": "…"}`: the token of an email
//! link, in the continuation flow selected before (`FLOW_CONTINUATION_TOKEN_REQUIRED`).

use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::Response;
use gatehouse_core::flow::Action;
use serde::Deserialize;

use crate::errors::ApiError;
use crate::extract::{ClientIp, JsonBody};
use crate::state::AppState;

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TokenRequest {
    pub token: String,
}

#[tracing::instrument(name = "pss.continuation_token_check", skip_all)]
pub async fn handler(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    headers: HeaderMap,
    JsonBody(body): JsonBody<TokenRequest>,
) -> Result<Response, ApiError> {
    let token = body.token.trim();
    if token.is_empty()
        || token.len() > 256
        || !token.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    {
        return Err(ApiError::InvalidRequest {
            title: "token must be the 1–256 URL-safe characters of the link".into(),
            pointer: Some("/token".into()),
        });
    }
    super::run(&state, &headers, ip, Action::CheckContinuationToken { token: token.to_owned() }).await
}
