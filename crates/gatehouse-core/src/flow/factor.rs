//! Checking an answer to a factor under the lockout: the attempt is counted atomically in the store *before*
//! the answer is looked at, so parallel requests on any number of nodes never get more guesses than allowed;
//! a right answer gives the attempt back.

use std::future::Future;

use crate::clock::Millis;
use crate::config::{Counter, OverLimit};
use crate::flow::engine::EngineError;
use crate::ports::{Effect, Failure, Store};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Counted {
    Right,
    /// Wrong, and counted: past the limit this failure locked the user or blocked the counter.
    Wrong(Failure),
    /// The counter is used up (the user is locked, about to be, or the factor is blocked): the answer was not
    /// looked at.
    Exhausted,
}

/// One answer to check: whose, and on which counter.
pub struct Attempt<'a> {
    pub user_id: &'a str,
    pub counter: &'a Counter,
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
    let Attempt { user_id, counter, now } = attempt;
    let method_id = counter.method_id.as_str();
    if store.reserve_attempt(user_id, method_id, counter.max, now).await?.is_none() {
        return Ok(Counted::Exhausted);
    }
    let release = || Effect::ReleaseAttempt { user_id: user_id.to_owned(), method_id: method_id.to_owned() };
    let give_back = || async {
        if let Err(release_error) = store.apply(&[release()]).await {
            tracing::error!(error = %release_error, "could not give back a reserved attempt");
        }
    };
    let right = match check.await {
        Ok(right) => right,
        Err(e) => {
            // The answer was never looked at (the hashing pool is full, the database failed): the attempt is
            // given back at once, so a 503 costs the user nothing.
            give_back().await;
            return Err(e);
        }
    };
    if right {
        effects.push(release());
        return Ok(Counted::Right);
    }
    // The failure and its consequence past the limit are written now in one transaction — not with the flow's
    // commit, which a failure later in the call could lose — and counted on failures alone, not on checks in
    // flight. If that transaction fails (503), the slot is *not* given back: the answer was looked at and was
    // wrong, and a 503 that costs nothing would be an oracle with unlimited guesses. Housekeeping reclaims slots
    // left that long after the check (`Store::purge_spent`).
    Ok(Counted::Wrong(store.record_failure(user_id, counter, now).await?))
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
    /// The counter a wrong answer to `method_id` counts on in this flow.
    pub(crate) fn counter(&self, method_id: &str) -> Counter {
        self.deps.config.lockout.counter(method_id, self.kind().hides_locks())
    }

    /// Checks one answer of the identified user under the lockout (see [`counted_check`]). In stealth mode the
    /// answer is not looked at and is wrong, and nothing is counted.
    pub(crate) async fn verify_factor<F>(&mut self, method_id: &str, check: F) -> Result<Check, EngineError>
    where
        F: Future<Output = Result<bool, EngineError>>,
    {
        let counter = self.counter(method_id);
        let Some(user_id) = self.user_id() else {
            self.count_for_nobody(&counter).await?;
            return Ok(Check::Wrong);
        };
        let attempt = Attempt { user_id: &user_id, counter: &counter, now: self.now };
        let mut effects = Vec::new();
        let counted = counted_check(self.deps.store, attempt, &mut effects, check).await;
        self.forget_user_unless_right(&counted);
        let counted = counted?;
        self.effects.extend(effects);
        let (check, event, details) = match counted {
            Counted::Right => return Ok(Check::Right),
            Counted::Exhausted => {
                if self.kind().hides_locks() {
                    // Where a refused check must look like a wrong answer, it also costs what one costs.
                    self.deps.store.record_failure("", &counter, self.now).await?;
                }
                (Check::Locked, "factor.refused", serde_json::json!({ "method": counter.method_id }))
            }
            Counted::Wrong(Failure { count, locked: true, .. }) => {
                let reason = match &counter.over_limit {
                    OverLimit::Lock { reason } => reason.as_str(),
                    OverLimit::Throttle(_) => "",
                };
                (Check::Locked, "user.locked", serde_json::json!({ "reason": reason, "failed_attempts": count }))
            }
            Counted::Wrong(Failure { count, blocked_until: Some(until), .. }) => (
                Check::Wrong,
                "factor.throttled",
                serde_json::json!({ "method": counter.method_id, "failed_attempts": count, "until": until }),
            ),
            Counted::Wrong(_) => return Ok(Check::Wrong),
        };
        if self.kind().hides_locks() {
            let mut note = details;
            if let Some(map) = note.as_object_mut() {
                map.insert("event".into(), serde_json::json!(event));
            }
            self.counter_note = Some(note);
        } else {
            self.audit(event, "ok", details);
        }
        Ok(check)
    }

    /// The statements a wrong answer costs, run for nobody (they count nothing): an unknown or stealth user costs
    /// the store what a real user's wrong answer costs.
    pub(crate) async fn count_for_nobody(&mut self, counter: &Counter) -> Result<(), EngineError> {
        self.deps.store.reserve_attempt("", &counter.method_id, counter.max, self.now).await?;
        // As after a real user's wrong answer, the next load reads the user again: the same work either way.
        self.forget_user();
        self.deps.store.record_failure("", counter, self.now).await?;
        Ok(())
    }

    /// A counted check that was not right may have written a failure that locked the user (or, for nobody, a
    /// failure that stands for one): the next load reads the user again. A right answer changed no user row.
    pub(crate) fn forget_user_unless_right(&mut self, counted: &Result<Counted, EngineError>) {
        if !matches!(counted, Ok(Counted::Right)) {
            self.forget_user();
        }
    }

    /// The answer to a factor check that used up the counter: `USER_LOCKED` where locks may show, else `None`
    /// (the step answers as for a wrong answer).
    pub(crate) fn locked_answer(&mut self, check: Check) -> Option<crate::flow::Outcome> {
        (check == Check::Locked && !self.kind().hides_locks())
            .then(|| self.terminate_with(crate::flow::ErrorCode::UserLocked))
    }
}
