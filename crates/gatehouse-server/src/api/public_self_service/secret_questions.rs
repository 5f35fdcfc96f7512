//! `POST /rest/public/self-service/verification/secret-questions/check/` — `{"answers": ["…", "…"]}`, one
//! answer per question asked (`SECRET_QUESTIONS_ANSWERS_REQUIRED`, `attributes.questions`), in that order.

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
pub struct AnswersRequest {
    pub answers: Vec<String>,
}

#[tracing::instrument(name = "pss.secret_answers_check", skip_all)]
pub async fn check(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    headers: HeaderMap,
    JsonBody(body): JsonBody<AnswersRequest>,
) -> Result<Response, ApiError> {
    if body.answers.len() > 16 || body.answers.iter().any(|a| a.chars().count() > 256) {
        return Err(ApiError::InvalidRequest {
            title: "at most 16 answers of at most 256 characters".into(),
            pointer: Some("/answers".into()),
        });
    }
    super::run(&state, &headers, ip, Action::CheckSecretAnswers { answers: body.answers }).await
}
