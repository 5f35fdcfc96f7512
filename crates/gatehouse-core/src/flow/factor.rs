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
    let Some(count) = store.reserve_attempt(user_id, method_id, max).await? else {
        return Ok(Counted::Exhausted);
    };
    if check.await? {
        effects.push(Effect::ReleaseAttempt { user_id: user_id.to_owned(), method_id: method_id.to_owned() });
        return Ok(Counted::Right);
    }
    let locked = count > i64::from(max);
    if locked {
        effects.push(Effect::Lock {
            user_id: user_id.to_owned(),
            reason: lock_reason.to_owned(),
            at: now,
            replace: false,
        });
    }
    Ok(Counted::Wrong { count, locked })
}
