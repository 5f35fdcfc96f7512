//! Checking an answer to a factor under the lockout: the attempt is counted atomically in the store *before*
//! the answer is looked at, so parallel requests on any number of nodes never get more guesses than allowed;
//! a right answer gives the attempt back.

use std::future::Future;

use crate::clock::Millis;
use crate::flow::engine::EngineError;
use crate::ports::{Effect, Store};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Counted {
    Right,
    /// Wrong; `locked` when this failure exceeded the limit and locks the user with `lock_reason` (effect pushed).
    Wrong {
        count: i64,
        locked: bool,
    },
    /// The counter is used up (the user is locked or about to be): the answer was not looked at.
    Exhausted,
}

/// One answer to check: whose, for which counter, and what a lock would say.
pub struct Attempt<'a> {
    pub user_id: &'a str,
    pub method_id: &'a str,
    /// The user is locked once the counter exceeds this.
    pub max: u32,
    pub lock_reason: &'a str,
    pub now: Millis,
}

pub async fn counted_check<F>(
    store: &dyn Store,
    attempt: Attempt<'_>,
    effects: &mut Vec<Effect>,
    check: F,
) -> Result<Counted, EngineError>
where
    F: Future<Output = Result<bool, EngineError>>,
{
    let Attempt { user_id, method_id, max, lock_reason, now } = attempt;
    if store.reserve_attempt(user_id, method_id, max).await?.is_none() {
        return Ok(Counted::Exhausted);
    }
    let release = || Effect::ReleaseAttempt { user_id: user_id.to_owned(), method_id: method_id.to_owned() };
    let right = match check.await {
        Ok(right) => right,
        Err(e) => {
            // The answer was never looked at (the hashing pool is full, the database failed): the attempt is
            // given back at once, so a 503 costs the user nothing.
            if let Err(release_error) = store.apply(&[release()]).await {
                tracing::error!(error = %release_error, "could not give back a reserved attempt");
            }
            return Err(e);
        }
    };
    if right {
        effects.push(release());
        return Ok(Counted::Right);
    }
    // The failure and, past the limit, the lock are written now in one transaction — not with the flow's commit,
    // which a failure later in the call could lose — and counted on failures alone, not on checks in flight.
    let (count, locked) = store.record_failure(user_id, method_id, max, lock_reason, now).await?;
    Ok(Counted::Wrong { count, locked })
}

/// How a factor's answer came out, as a step sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Check {
    Right,
    Wrong,
    /// The counter is used up (now or before): in a kind that shows locks the flow ends with `USER_LOCKED`;
    /// elsewhere this answers exactly like [`Check::Wrong`].
    Locked,
}

impl crate::flow::engine::Ctx<'_> {
    /// Checks one answer of the identified user under the lockout (see [`counted_check`]). In stealth mode the
    /// answer is not looked at and is wrong, and nothing is counted.
    pub(crate) async fn verify_factor<F>(&mut self, method_id: &str, check: F) -> Result<Check, EngineError>
    where
        F: Future<Output = Result<bool, EngineError>>,
    {
        let Some(user_id) = self.user_id() else {
            // Stealth: the same reservation statement runs for nobody (it reserves nothing), so the store sees
            // the same work as for a real user's wrong answer.
            let max = self.deps.config.lockout.max_for(method_id);
            self.deps.store.reserve_attempt("", method_id, max).await?;
            self.deps.store.record_failure("", method_id, max, "", self.now).await?;
            return Ok(Check::Wrong);
        };
        let max = self.deps.config.lockout.max_for(method_id);
        let reason = crate::user::lock_reason::too_many_auth_attempts(method_id);
        let attempt = Attempt { user_id: &user_id, method_id, max, lock_reason: &reason, now: self.now };
        let mut effects = Vec::new();
        let counted = counted_check(self.deps.store, attempt, &mut effects, check).await?;
        self.effects.extend(effects);
        Ok(match counted {
            Counted::Right => Check::Right,
            Counted::Exhausted => {
                self.audit("factor.refused", "counter_exhausted", serde_json::json!({ "method": method_id }));
                Check::Locked
            }
            Counted::Wrong { count, locked: true } => {
                self.audit("user.locked", "ok", serde_json::json!({ "reason": reason, "failed_attempts": count }));
                Check::Locked
            }
            Counted::Wrong { .. } => Check::Wrong,
        })
    }

    /// The answer to a factor check that used up the counter: `USER_LOCKED` where locks may show, else `None`
    /// (the step answers as for a wrong answer).
    pub(crate) fn locked_answer(&mut self, check: Check) -> Option<crate::flow::Outcome> {
        (check == Check::Locked && !self.kind().hides_locks())
            .then(|| self.terminate_with(crate::flow::ErrorCode::UserLocked))
    }
}
