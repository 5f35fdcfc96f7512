//! `GET /v1/enrolled?email=` → `{"type": "api.application.enroll.check", "result": {"enrolled": bool}}`: whether
//! this application enrolled the person and they have a device.

use axum::extract::{Query, State};
use axum::response::Response;
use serde::Deserialize;

use super::{App, V1Error, email, ok};
use crate::state::AppState;

#[derive(Debug, Deserialize, utoipa::IntoParams)]
pub struct EnrolledQuery {
    pub email: String,
}

#[tracing::instrument(name = "v1.enrolled", skip_all)]
pub async fn handler(
    State(state): State<AppState>,
    App(app): App,
    query: Result<Query<EnrolledQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Response, V1Error> {
    let Query(q) = query.map_err(|e| V1Error::Invalid(e.body_text()))?;
    let enrolled = state.applications().enrolled(&app, &email(&q.email)?).await?;
    Ok(ok("api.application.enroll.check", serde_json::json!({ "enrolled": enrolled })))
}
