//! Secret questions and answers: users set answers to some of the configured questions (a protected call);
//! a verification step asks some of them. Answers are normalised (trimmed, lower case, inner blanks collapsed)
//! and stored only as keyed hashes bound to the user and the question.

use std::collections::HashSet;

use subtle::ConstantTimeEq;

use crate::clock::Millis;
use crate::config::SecretQuestionsConfig;
use crate::crypto::ServerKey;
use crate::ports::Effect;

/// Why a set of answers is refused, with the JSON pointer of the culprit.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct AnswersRefused {
    pub pointer: String,
    pub message: String,
}

pub fn normalize(answer: &str) -> String {
    answer.split_whitespace().collect::<Vec<_>>().join(" ").to_lowercase()
}

fn purpose(user_id: &str, question: &str) -> String {
    format!("secret-answer/{user_id}/{question}")
}

pub fn hash_answer(key: &ServerKey, user_id: &str, question: &str, answer: &str) -> String {
    key.hash_secret(&purpose(user_id, question), &normalize(answer))
}

/// Whether `answer` is the one whose hash is `stored` (constant time).
pub fn answer_matches(key: &ServerKey, user_id: &str, question: &str, answer: &str, stored: &str) -> bool {
    bool::from(hash_answer(key, user_id, question, answer).as_bytes().ct_eq(stored.as_bytes()))
}

/// The effect that replaces the user's answers with `answers` (question, answer), after checking them against
/// the configuration: known, distinct questions, at least `min_answers`, answers long enough and not all alike.
pub fn set_answers(
    cfg: &SecretQuestionsConfig,
    key: &ServerKey,
    user_id: &str,
    answers: &[(String, String)],
    now: Millis,
) -> Result<Effect, AnswersRefused> {
    let refuse = |pointer: String, message: String| Err(AnswersRefused { pointer, message });
    if answers.len() < cfg.min_answers {
        return refuse("/answers".into(), format!("answer at least {} questions", cfg.min_answers));
    }
    let mut questions = HashSet::new();
    let mut distinct = HashSet::new();
    for (i, (question, answer)) in answers.iter().enumerate() {
        if !cfg.questions.contains(question) {
            return refuse(format!("/answers/{i}/question"), format!("`{question}` is not one of the questions"));
        }
        if !questions.insert(question.as_str()) {
            return refuse(format!("/answers/{i}/question"), format!("`{question}` is answered twice"));
        }
        let normalized = normalize(answer);
        if normalized.chars().count() < cfg.min_answer_length || answer.chars().count() > 256 {
            return refuse(
                format!("/answers/{i}/answer"),
                format!("an answer needs {} to 256 characters", cfg.min_answer_length),
            );
        }
        distinct.insert(normalized);
    }
    if distinct.len() < answers.len() {
        return refuse("/answers".into(), "every question needs its own answer".into());
    }
    let answers = answers.iter().map(|(q, a)| (q.clone(), hash_answer(key, user_id, q, a))).collect();
    Ok(Effect::SetSecretAnswers { user_id: user_id.to_owned(), answers, at: now })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg() -> SecretQuestionsConfig {
        SecretQuestionsConfig { min_answers: 2, ..SecretQuestionsConfig::default() }
    }

    fn pair(q: &str, a: &str) -> (String, String) {
        (q.to_owned(), a.to_owned())
    }

    #[test]
    fn answers_are_normalised_hashed_per_user_and_question() {
        let key = ServerKey::from_bytes(&[5u8; 32]).unwrap();
        let q = "secret-question.first-pet";
        let stored = hash_answer(&key, "u1", q, "  Rex   the  Dog ");
        assert!(answer_matches(&key, "u1", q, "rex the dog", &stored));
        assert!(!answer_matches(&key, "u2", q, "rex the dog", &stored), "bound to the user");
        assert!(!answer_matches(&key, "u1", "secret-question.birth-city", "rex the dog", &stored), "and the question");
        assert!(!stored.contains("rex"));
    }

    #[test]
    fn a_set_of_answers_must_fit_the_configuration() {
        let key = ServerKey::from_bytes(&[5u8; 32]).unwrap();
        let (a, b) = ("secret-question.first-pet", "secret-question.birth-city");
        let ok = set_answers(&cfg(), &key, "u1", &[pair(a, "Rex"), pair(b, "Basel")], 1);
        assert!(matches!(ok, Ok(Effect::SetSecretAnswers { ref answers, .. }) if answers.len() == 2));
        let refused = |answers: &[(String, String)]| set_answers(&cfg(), &key, "u1", answers, 1).unwrap_err().pointer;
        assert_eq!(refused(&[pair(a, "Rex")]), "/answers");
        assert_eq!(refused(&[pair(a, "Rex"), pair("nope.q", "Basel")]), "/answers/1/question");
        assert_eq!(refused(&[pair(a, "Rex"), pair(a, "Basel")]), "/answers/1/question");
        assert_eq!(refused(&[pair(a, "Rex"), pair(b, " x ")]), "/answers/1/answer");
        assert_eq!(refused(&[pair(a, "Rex"), pair(b, "REX")]), "/answers");
    }
}
