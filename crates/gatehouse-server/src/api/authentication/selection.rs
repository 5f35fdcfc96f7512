//! Factor selection for users with several second factors:
//! `POST /rest/public/authentication/selection/options/retrieve` lists the option ids (`OATH_OTP`, `MTAN`) in
//! `attributes.options`; `POST …/selection/options/{id}/select` continues with that factor.

use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::response::Response;
use gatehouse_core::flow::Action;

use crate::errors::ApiError;
use crate::extract::{ClientIp, JsonBody, NoInput};
use crate::state::AppState;

#[tracing::instrument(name = "auth.selection_retrieve", skip_all)]
pub async fn retrieve(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    headers: HeaderMap,
    JsonBody(_): JsonBody<NoInput>,
) -> Result<Response, ApiError> {
    super::run(&state, &headers, ip, Action::RetrieveOptions).await
}

#[tracing::instrument(name = "auth.selection_select", skip_all, fields(option = %option_id))]
pub async fn select(
    State(state): State<AppState>,
    Path(option_id): Path<String>,
    ClientIp(ip): ClientIp,
    headers: HeaderMap,
    JsonBody(_): JsonBody<NoInput>,
) -> Result<Response, ApiError> {
    super::run(&state, &headers, ip, Action::SelectOption { id: option_id }).await
}
