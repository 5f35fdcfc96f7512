//! Username and password (next step `PASSWORD_REQUIRED`), the first step of most logins. The counter is
//! reserved before the hash is looked at; unknown, invalid and locked users cost the same dummy verification.

use crate::crypto::HashError;
use crate::flow::FlowKind;
use crate::flow::codes::{ErrorCode, FlowError, NextStep, Outcome};
use crate::flow::engine::{Ctx, EngineError};
use crate::flow::factor::{Attempt, Counted, counted_check};
use crate::flow::session::Subject;
use crate::ports::{self, Effect};
use crate::user::{User, lock_reason, normalize_login};

pub(crate) const KINDS: &[FlowKind] = &[FlowKind::Authentication];
pub(crate) const NEXT: Outcome = Outcome::Continue(Some(NextStep::PasswordRequired));

/// Why a password check failed; in enumeration-protection mode all of them look the same.
enum Failure {
    /// With a keyed hash of the name, for the audit trail.
    UnknownUser(String),
    Invalid,
    Locked,
    TemporarilyLocked(i64),
    Wrong(Option<i64>),
}

impl Ctx<'_> {
    pub(crate) async fn check_password(
        &mut self,
        username: Option<&str>,
        password: String,
    ) -> Result<Outcome, EngineError> {
        // A login a self-service flow initialized knows its user; otherwise a missing name matches nobody.
        let seeded = self.state.subject.as_ref().filter(|_| self.state.seeded).map(|s| s.login.clone());
        let login = match username {
            Some(name) => normalize_login(name),
            None => seeded.unwrap_or_default(),
        };
        self.state.subject = Some(Subject { login: login.clone(), user_id: None });
        let method = self.deps.config.authentication.password_method_id.clone();
        let counter = self.counter(&method);
        let found = self.deps.store.find_user_by_login(&login).await?;
        // The steps a right password advances to load this user again in the same call: they get this read.
        self.user_read = Some(found.clone());
        let Some(user) = found else {
            // The same work as for a real user's wrong password, so neither time nor load tells anything.
            self.deps.hasher.verify_dummy(password).await?;
            self.count_for_nobody(&counter).await?;
            // A name that matches no user is often a password typed into the wrong field: neither the flow
            // session nor the audit trail keeps it, only a keyed hash (enough to see repeats).
            self.state.subject = None;
            let tag = self.deps.key.hash_secret("audit-unknown-login", &login);
            return Ok(self.password_failed(Failure::UnknownUser(tag[..16].to_owned())));
        };
        self.state.subject = Some(Subject { login, user_id: Some(user.id.clone()) });
        if !user.is_valid_at(self.now) {
            self.deps.hasher.verify_dummy(password).await?;
            self.count_for_nobody(&counter).await?;
            return Ok(self.password_failed(Failure::Invalid));
        }
        if user.locked {
            self.deps.hasher.verify_dummy(password).await?;
            self.count_for_nobody(&counter).await?;
            return Ok(self.password_failed(Failure::Locked));
        }
        if let Some(until) = user.temp_locked_until.filter(|&u| u > self.now) {
            // Neither checked nor counted while the temporary lock lasts.
            return Ok(self.password_failed(Failure::TemporarilyLocked(until)));
        }
        let mut effects = Vec::new();
        let mut rehash = None;
        // Kept for the dummy verification should the counter be used up (the check below consumes `password`).
        let for_dummy = password.clone();
        let counted = {
            let (hasher, stored) = (self.deps.hasher, user.password_hash.clone());
            let check = async {
                let Some(stored) = stored else {
                    hasher.verify_dummy(password).await?;
                    return Ok(false);
                };
                match hasher.verify(password.clone(), stored).await {
                    Ok(v) => {
                        if v.matches && v.needs_rehash {
                            rehash = Some(password);
                        }
                        Ok(v.matches)
                    }
                    Err(HashError::UnsupportedHash(why)) => {
                        tracing::error!(user_id = %user.id, error = %why, "stored password hash cannot be verified");
                        Ok(false)
                    }
                    Err(e) => Err(e.into()),
                }
            };
            let attempt = Attempt { user_id: &user.id, counter: &counter, now: self.now };
            counted_check(self.deps.store, attempt, &mut effects, check).await
        };
        self.forget_user_unless_right(&counted);
        let counted = counted?;
        self.effects.extend(effects);
        match counted {
            Counted::Right => {
                if let Some(password) = rehash {
                    self.upgrade_hash(&user, password).await?;
                }
                self.factor_passed(&method);
                self.audit("login.password", "ok", serde_json::json!({}));
                self.advance().await
            }
            Counted::Exhausted => {
                // The user is being locked right now by a parallel request: answer as for a locked user, after
                // the same work, so neither time nor CPU tells the difference.
                self.deps.hasher.verify_dummy(for_dummy).await?;
                self.deps.store.record_failure("", &counter, self.now).await?;
                Ok(self.password_failed(Failure::Locked))
            }
            Counted::Wrong(ports::Failure { count, locked, .. }) => {
                if locked {
                    let reason = lock_reason::too_many_auth_attempts(&method);
                    self.audit("user.locked", "ok", serde_json::json!({ "reason": reason, "failed_attempts": count }));
                    return Ok(self.password_failed(Failure::Locked));
                }
                let delay = self.deps.config.authentication.temporary_locking.delay_ms(count);
                let until = (delay > 0).then(|| self.now.saturating_add(i64::try_from(delay).unwrap_or(i64::MAX)));
                if until.is_some() {
                    self.effects.push(Effect::SetTemporaryLock { user_id: user.id.clone(), until });
                }
                Ok(self.password_failed(Failure::Wrong(until)))
            }
        }
    }

    /// Stores a hash with the current scheme and parameters for a password that verified against an old one.
    async fn upgrade_hash(&mut self, user: &User, password: String) -> Result<(), EngineError> {
        let password_hash = self.deps.hasher.hash(password).await?;
        self.effects.push(Effect::SetPassword { user_id: user.id.clone(), password_hash, at: self.now });
        self.audit("password.rehashed", "ok", serde_json::json!({}));
        Ok(())
    }

    fn password_failed(&mut self, failure: Failure) -> Outcome {
        let (code, outcome) = match failure {
            Failure::UnknownUser(_) => (ErrorCode::UsernamePasswordWrong, "unknown_user"),
            Failure::Invalid => (ErrorCode::UserInvalid, "invalid_user"),
            Failure::Locked => (ErrorCode::UserLocked, "locked"),
            Failure::TemporarilyLocked(_) => (ErrorCode::UserTemporarilyLocked, "temporarily_locked"),
            Failure::Wrong(_) => (ErrorCode::UsernamePasswordWrong, "wrong_password"),
        };
        let mut details = serde_json::json!({ "method": "PASSWORD" });
        if let Failure::UnknownUser(tag) = &failure {
            details["name_tag"] = serde_json::json!(tag);
        }
        self.audit("login.failed", outcome, details);
        if self.deps.config.authentication.enumeration_protection {
            return self.terminate_with(ErrorCode::AuthenticationFailed);
        }
        match failure {
            Failure::UnknownUser(_) | Failure::Wrong(_) => {
                if let Failure::Wrong(until) = failure {
                    self.lock_expiry = until;
                }
                Outcome::Retry { next: NextStep::PasswordRequired, errors: vec![FlowError::new(code)] }
            }
            Failure::TemporarilyLocked(until) => {
                self.lock_expiry = Some(until);
                self.terminate_with(code)
            }
            Failure::Invalid | Failure::Locked => self.terminate_with(code),
        }
    }
}
