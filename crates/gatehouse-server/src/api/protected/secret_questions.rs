//! `GET /rest/protected/self-service/secret-questions/` lists the configured questions and which of them the
//! user has answered; `POST …/secret-questions/answers/` `{"answers": [{"question", "answer"}, …]}` replaces
//! every answer (at least `secret_questions.min_answers`; stored as keyed hashes, never shown again).

use axum::Json;
use axum::extract::State;
use gatehouse_core::protected::SecretQuestions;
use serde::Deserialize;

use super::Authenticated;
use crate::documents;
use crate::errors::ApiError;
use crate::extract::JsonBody;
use crate::state::AppState;

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = SecretAnswer)]
pub struct Answer {
    pub question: String,
    pub answer: String,
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = SecretAnswersRequest)]
pub struct AnswersRequest {
    pub answers: Vec<Answer>,
}

fn document(state: &AppState, auth: &Authenticated, q: &SecretQuestions) -> Json<serde_json::Value> {
    let attributes = serde_json::json!({
        "questions": q.questions,
        "answered": q.answered,
        "minAnswers": q.min_answers,
        "minAnswerLength": q.min_answer_length,
    });
    Json(documents::resource(state.clock.now_ms(), "my.secret-questions", &auth.user.id, attributes))
}

#[tracing::instrument(name = "protected.secret_questions", skip_all)]
pub async fn show(State(state): State<AppState>, auth: Authenticated) -> Result<Json<serde_json::Value>, ApiError> {
    let q = state.protected().secret_questions(&auth.me()).await?;
    Ok(document(&state, &auth, &q))
}

#[tracing::instrument(name = "protected.secret_answers", skip_all)]
pub async fn set(
    State(state): State<AppState>,
    auth: Authenticated,
    JsonBody(body): JsonBody<AnswersRequest>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let pairs: Vec<(String, String)> = body.answers.into_iter().map(|a| (a.question, a.answer)).collect();
    let q = state.protected().set_secret_answers(&auth.me(), &pairs).await?;
    Ok(document(&state, &auth, &q))
}
