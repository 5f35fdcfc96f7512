//! `GET /rest/protected/self-service/secret-questions/` lists the configured questions and which of them the
//! user has answered; `POST …/secret-questions/answers/` `{"answers": [{"question", "answer"}, …]}` replaces
//! every answer (at least `secret_questions.min_answers`; stored as keyed hashes, never shown again).

use axum::Json;
use axum::extract::State;
use gatehouse_core::ports::Effect;
use gatehouse_core::secret_answers::set_answers;
use serde::Deserialize;

use super::Authenticated;
use crate::documents;
use crate::errors::ApiError;
use crate::extract::JsonBody;
use crate::state::AppState;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Answer {
    pub question: String,
    pub answer: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AnswersRequest {
    pub answers: Vec<Answer>,
}

async fn view(state: &AppState, auth: &Authenticated) -> Result<Json<serde_json::Value>, ApiError> {
    let answered: Vec<String> =
        state.store.get_secret_answers(&auth.user.id).await?.into_iter().map(|(q, _)| q).collect();
    let cfg = &state.config.public_self_service.secret_questions;
    let attributes = serde_json::json!({
        "questions": cfg.questions,
        "answered": answered,
        "minAnswers": cfg.min_answers,
        "minAnswerLength": cfg.min_answer_length,
    });
    Ok(Json(documents::resource(state.clock.now_ms(), "my.secret-questions", &auth.user.id, attributes)))
}

#[tracing::instrument(name = "protected.secret_questions", skip_all)]
pub async fn show(State(state): State<AppState>, auth: Authenticated) -> Result<Json<serde_json::Value>, ApiError> {
    view(&state, &auth).await
}

#[tracing::instrument(name = "protected.secret_answers", skip_all)]
pub async fn set(
    State(state): State<AppState>,
    auth: Authenticated,
    JsonBody(body): JsonBody<AnswersRequest>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let pairs: Vec<(String, String)> = body.answers.into_iter().map(|a| (a.question, a.answer)).collect();
    let now = state.clock.now_ms();
    let cfg = &state.config.public_self_service.secret_questions;
    let effect = set_answers(cfg, &state.key, &auth.user.id, &pairs, now)
        .map_err(|e| ApiError::InvalidRequest { title: e.message, pointer: Some(e.pointer) })?;
    let audit = super::audit(&state, &auth, "secret_answers.set", serde_json::json!({ "count": pairs.len() }));
    state.store.apply(&[effect, Effect::Audit(audit)]).await?;
    view(&state, &auth).await
}
