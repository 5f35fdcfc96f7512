//! Secret Questions Identity Verification (next step `SECRET_QUESTIONS_ANSWERS_REQUIRED` with `questions`;
//! `POST …/verification/secret-questions/check/` `{"answers": [...]}` in the order asked). Some of the user's
//! answered questions are asked, chosen at random; every answer must be right. A user in stealth mode, or one
//! with too few answers, is asked plausible questions that never verify, drawn from a set as small and as stable
//! per name as a real user's.

use crate::config::SecretQuestionsStep;
use crate::flow::FlowKind;
use crate::flow::codes::{ErrorCode, FlowError, NextStep, Outcome};
use crate::flow::engine::{Ctx, EngineError};
use crate::flow::factor::Check;
use crate::flow::session::Scratch;
use crate::random::Random;
use crate::secret_answers::answer_matches;

pub(crate) const KINDS: &[FlowKind] = &[FlowKind::PublicSelfService];

/// `n` distinct items of `from`, chosen uniformly (a partial Fisher–Yates shuffle).
fn choose(random: &dyn Random, mut from: Vec<String>, n: usize) -> Vec<String> {
    let n = n.min(from.len());
    for i in 0..n {
        let span = u64::try_from(from.len() - i).unwrap_or(1);
        // Modulo bias over 2^64 is negligible for a handful of questions.
        let j = i + usize::try_from(random.next_u64() % span).unwrap_or(0);
        from.swap(i, j);
    }
    from.truncate(n);
    from
}

impl Ctx<'_> {
    /// The questions a name in stealth mode seems to have answered: as many as a user must answer, the same for
    /// the same name on every node (ranked by a keyed hash), so that asking again and again shows the small,
    /// stable set a real user has — not every configured question.
    fn stealth_question_pool(&self) -> Vec<String> {
        let cfg = &self.deps.config.public_self_service.secret_questions;
        let login = self.state.subject.as_ref().map(|s| s.login.as_str()).unwrap_or_default();
        let mut ranked: Vec<(String, String)> = cfg
            .questions
            .iter()
            .map(|q| (self.deps.key.hash_secret("stealth-questions", &format!("{login}\n{q}")), q.clone()))
            .collect();
        ranked.sort();
        ranked.into_iter().take(cfg.min_answers).map(|(_, q)| q).collect()
    }

    /// The questions asked when the step was entered.
    pub(crate) fn describe_questions(&mut self) -> Outcome {
        let questions = match &self.state.scratch {
            Scratch::SecretQuestions { questions, .. } => questions.clone(),
            _ => Vec::new(),
        };
        self.asked(&questions)
    }

    fn asked(&mut self, questions: &[String]) -> Outcome {
        self.attributes.insert("questions".into(), serde_json::json!(questions));
        Outcome::Continue(Some(NextStep::SecretQuestionsAnswersRequired))
    }

    pub(crate) async fn enter_secret_questions(&mut self, cfg: &SecretQuestionsStep) -> Result<Outcome, EngineError> {
        // The same lookup for a user in stealth mode, for nobody.
        let id = self.user_id();
        let answered: Vec<String> = self
            .deps
            .store
            .get_secret_answers(id.as_deref().unwrap_or(""))
            .await?
            .into_iter()
            .map(|(q, _)| q)
            .filter(|_| id.is_some())
            .collect();
        let pool = if answered.len() >= cfg.questions_asked {
            answered
        } else {
            self.state.stealth = true;
            self.stealth_question_pool()
        };
        let questions = choose(self.deps.random, pool, cfg.questions_asked);
        let outcome = if self.state.stealth { "stealth" } else { "ok" };
        self.audit("secret_questions.asked", outcome, serde_json::json!({ "count": questions.len() }));
        self.state.scratch = Scratch::SecretQuestions { questions: questions.clone(), failed: 0 };
        Ok(self.asked(&questions))
    }

    pub(crate) async fn check_secret_answers(
        &mut self,
        cfg: &SecretQuestionsStep,
        answers: &[String],
    ) -> Result<Outcome, EngineError> {
        let Scratch::SecretQuestions { questions, failed } = self.state.scratch.clone() else {
            return Err(EngineError::Inconsistent("secret questions step without questions"));
        };
        // A user locked (or invalidated) since identification silently drops into stealth mode. The check and
        // the lookup run in stealth mode too (for nobody), so both make the same store calls.
        if self.restriction_violation().await?.is_some() {
            self.state.stealth = true;
        }
        let id = self.user_id();
        let stored = self.deps.store.get_secret_answers(id.as_deref().unwrap_or("")).await?;
        let stored = if id.is_some() { stored } else { Vec::new() };
        let user_id = self.user_id().unwrap_or_default();
        let key = self.deps.key;
        // Every answer is compared, so the time does not tell which one was wrong.
        let mut right = answers.len() == questions.len() && !stored.is_empty();
        for (i, question) in questions.iter().enumerate() {
            let hash = stored.iter().find(|(q, _)| q == question).map(|(_, h)| h.as_str());
            let answer = answers.get(i).map_or("", String::as_str);
            right &= hash.is_some_and(|h| answer_matches(key, &user_id, question, answer, h));
        }
        let check = self.verify_factor(&cfg.method_id, async { Ok(right) }).await?;
        if check == Check::Right {
            self.factor_passed(&cfg.method_id);
            self.audit("secret_questions.verified", "ok", serde_json::json!({}));
            return self.advance().await;
        }
        let failed = failed + 1;
        self.audit(
            "secret_questions.failed",
            if self.state.stealth { "stealth" } else { "wrong" },
            serde_json::json!({}),
        );
        let error = FlowError::at(ErrorCode::SecretAnswersWrong, "/answers");
        if failed >= cfg.max_failed_attempts {
            return Ok(self.terminate(vec![error]));
        }
        self.state.scratch = Scratch::SecretQuestions { questions: questions.clone(), failed };
        self.attributes.insert("questions".into(), serde_json::json!(questions));
        Ok(Outcome::Retry { next: NextStep::SecretQuestionsAnswersRequired, errors: vec![error] })
    }
}
