//! Default Password Reset Restrictions: nonexistent → invalid → locked, first refusal wins.

use crate::clock::Millis;
use crate::config::{PasswordResetRestrictions, Restrictions, SelfUnlockRestrictions};
use crate::flow::codes::ErrorCode;
use crate::user::{User, lock_reason};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Allowed,
    /// Refused; with `feedback` the caller is told `code`, without it the flow continues in stealth mode.
    Refused {
        code: ErrorCode,
        feedback: bool,
    },
}

/// `max_unlocks` is `public_self_service.max_number_of_unlocks`.
pub fn evaluate(restrictions: &Restrictions, user: Option<&User>, now: Millis, max_unlocks: Option<u32>) -> Verdict {
    match restrictions {
        Restrictions::PasswordReset(r) => password_reset(r, user, now),
        Restrictions::SelfUnlock(r) => self_unlock(r, user, now, max_unlocks),
    }
}

fn self_unlock(r: &SelfUnlockRestrictions, user: Option<&User>, now: Millis, max_unlocks: Option<u32>) -> Verdict {
    let Some(user) = user else {
        return Verdict::Refused { code: ErrorCode::UserNotFound, feedback: r.nonexistent_user_feedback };
    };
    if !user.is_valid_at(now) {
        return Verdict::Refused { code: ErrorCode::UserInvalid, feedback: r.invalid_user_feedback };
    }
    if user.locked && !user.lock_reason.as_ref().is_some_and(|reason| r.allowed_lock_reasons.contains(reason)) {
        return Verdict::Refused { code: ErrorCode::UserLocked, feedback: r.locked_user_feedback };
    }
    if max_unlocks.is_some_and(|max| user.unlock_count >= i64::from(max)) {
        return Verdict::Refused { code: ErrorCode::TooManyUnlocks, feedback: r.too_many_unlocks_feedback };
    }
    Verdict::Allowed
}

fn password_reset(r: &PasswordResetRestrictions, user: Option<&User>, now: Millis) -> Verdict {
    let Some(user) = user else {
        return Verdict::Refused { code: ErrorCode::UserNotFound, feedback: r.nonexistent_user_feedback };
    };
    if !user.is_valid_at(now) {
        return Verdict::Refused { code: ErrorCode::UserInvalid, feedback: r.invalid_user_feedback };
    }
    if user.locked {
        let password_lock =
            user.lock_reason.as_deref() == Some(lock_reason::too_many_auth_attempts("PASSWORD").as_str());
        if !(r.allow_locked_user && password_lock) {
            return Verdict::Refused { code: ErrorCode::UserLocked, feedback: r.locked_user_feedback };
        }
    }
    Verdict::Allowed
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user() -> User {
        User {
            id: "u1".into(),
            username: "jdoe".into(),
            aliases: vec![],
            context: Default::default(),
            roles: vec![],
            password_hash: None,
            valid_from: None,
            valid_until: None,
            locked: false,
            lock_reason: None,
            locked_at: None,
            temp_locked_until: None,
            failed_attempts: Default::default(),
            unlock_count: 0,
            auth_method: None,
            password_changed_at: None,
            created_at: 0,
            updated_at: 0,
        }
    }

    fn restrictions(f: impl FnOnce(&mut PasswordResetRestrictions)) -> Restrictions {
        let mut r = PasswordResetRestrictions::default();
        f(&mut r);
        Restrictions::PasswordReset(r)
    }

    #[test]
    fn defaults_refuse_silently_in_order() {
        let r = restrictions(|_| {});
        assert_eq!(evaluate(&r, None, 0, None), Verdict::Refused { code: ErrorCode::UserNotFound, feedback: false });
        let mut expired = user();
        expired.valid_until = Some(10);
        expired.locked = true;
        assert_eq!(
            evaluate(&r, Some(&expired), 20, None),
            Verdict::Refused { code: ErrorCode::UserInvalid, feedback: false }
        );
        let mut locked = user();
        locked.locked = true;
        assert_eq!(
            evaluate(&r, Some(&locked), 20, None),
            Verdict::Refused { code: ErrorCode::UserLocked, feedback: false }
        );
        assert_eq!(evaluate(&r, Some(&user()), 20, None), Verdict::Allowed);
    }

    #[test]
    fn feedback_flags_are_independent() {
        let r = restrictions(|r| r.locked_user_feedback = true);
        assert_eq!(evaluate(&r, None, 0, None), Verdict::Refused { code: ErrorCode::UserNotFound, feedback: false });
        let mut locked = user();
        locked.locked = true;
        assert_eq!(
            evaluate(&r, Some(&locked), 0, None),
            Verdict::Refused { code: ErrorCode::UserLocked, feedback: true }
        );
    }

    #[test]
    fn allow_locked_user_only_covers_password_locks() {
        let r = restrictions(|r| r.allow_locked_user = true);
        let mut u = user();
        u.locked = true;
        u.lock_reason = Some(lock_reason::too_many_auth_attempts("PASSWORD"));
        assert_eq!(evaluate(&r, Some(&u), 0, None), Verdict::Allowed);
        u.lock_reason = Some(lock_reason::INITIATED_BY_ADMIN.into());
        assert_eq!(evaluate(&r, Some(&u), 0, None), Verdict::Refused { code: ErrorCode::UserLocked, feedback: false });
        u.lock_reason = Some(lock_reason::too_many_auth_attempts("EMAIL_OTP"));
        assert_eq!(evaluate(&r, Some(&u), 0, None), Verdict::Refused { code: ErrorCode::UserLocked, feedback: false });
    }

    #[test]
    fn validity_bounds() {
        let mut u = user();
        u.valid_from = Some(100);
        u.valid_until = Some(200);
        let r = restrictions(|_| {});
        assert_ne!(evaluate(&r, Some(&u), 99, None), Verdict::Allowed);
        assert_eq!(evaluate(&r, Some(&u), 100, None), Verdict::Allowed);
        assert_ne!(evaluate(&r, Some(&u), 200, None), Verdict::Allowed);
    }
}

#[cfg(test)]
mod self_unlock_tests {
    use super::*;
    use crate::user::lock_reason;

    fn locked_user(reason: &str, unlocks: i64) -> User {
        User {
            id: "u".into(),
            username: "u".into(),
            aliases: vec![],
            context: Default::default(),
            roles: vec![],
            password_hash: None,
            valid_from: None,
            valid_until: None,
            locked: true,
            lock_reason: Some(reason.into()),
            locked_at: None,
            temp_locked_until: None,
            failed_attempts: Default::default(),
            unlock_count: unlocks,
            auth_method: None,
            password_changed_at: None,
            created_at: 0,
            updated_at: 0,
        }
    }

    #[test]
    fn only_allowed_lock_reasons_and_within_the_limit() {
        let r = Restrictions::SelfUnlock(SelfUnlockRestrictions {
            locked_user_feedback: true,
            too_many_unlocks_feedback: true,
            ..Default::default()
        });
        let password = lock_reason::too_many_auth_attempts("PASSWORD");
        assert_eq!(evaluate(&r, Some(&locked_user(&password, 0)), 0, Some(2)), Verdict::Allowed);
        assert_eq!(
            evaluate(&r, Some(&locked_user(lock_reason::MAX_WRONG_OLD_PASSWORD, 1)), 0, Some(2)),
            Verdict::Allowed
        );
        assert_eq!(
            evaluate(&r, Some(&locked_user(lock_reason::INITIATED_BY_ADMIN, 0)), 0, Some(2)),
            Verdict::Refused { code: ErrorCode::UserLocked, feedback: true }
        );
        assert_eq!(
            evaluate(&r, Some(&locked_user(&password, 2)), 0, Some(2)),
            Verdict::Refused { code: ErrorCode::TooManyUnlocks, feedback: true }
        );
        assert_eq!(evaluate(&r, Some(&locked_user(&password, 50)), 0, None), Verdict::Allowed);
        let mut free = locked_user(&password, 0);
        free.locked = false;
        assert_eq!(
            evaluate(&r, Some(&free), 0, Some(2)),
            Verdict::Allowed,
            "users who are not locked may run the flow"
        );
        assert_eq!(evaluate(&r, None, 0, Some(2)), Verdict::Refused { code: ErrorCode::UserNotFound, feedback: false });
    }
}
