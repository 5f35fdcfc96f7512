//! Protected self-service: what a logged-in user does to their own account — change the password, enroll or
//! remove TOTP, set the SMS phone, manage authenticator devices, set secret answers. The JSON routes (and the
//! web UI later) only decode a request, call one of these, and encode the result.

use crate::audit::AuditEvent;
use crate::authenticator_service::{Activation, start_activation};
use crate::clock::{Clock, Millis};
use crate::config::{Config, Counter, OverLimit};
use crate::crypto::{HashError, PasswordHashing, ServerKey, totp};
use crate::flow::factor::{Attempt, Counted, counted_check};
use crate::flow::{ErrorCode, TOTP_SEAL_CONTEXT};
use crate::password_policy;
use crate::ports::{Device, Effect, Failure, Store, StoreError};
use crate::random::{Random, random_id};
use crate::secret_answers;
use crate::user::{User, lock_reason};

/// The counter of wrong old passwords in a password change.
pub const OLD_PASSWORD_METHOD: &str = "OLD_PASSWORD";

#[derive(Debug, thiserror::Error)]
pub enum ProtectedError {
    /// A wrong answer (400): the code says which, the pointer where.
    #[error("{code:?}")]
    Wrong { code: ErrorCode, pointer: &'static str },
    /// The call locked the user; the session has ended (403 `USER_LOCKED`).
    #[error("the account is locked")]
    Locked,
    /// The call does not fit the account's state (409), e.g. TOTP enrolled already.
    #[error("{0:?}")]
    Conflict(ErrorCode),
    /// A sensitive change needs a recent proof of identity (403 `REAUTHENTICATION_REQUIRED`): the password
    /// again, through `reauthenticate`.
    #[error("re-enter your password first")]
    StepUpRequired,
    /// The call needs something done first (400), e.g. a TOTP enrollment to confirm.
    #[error("{0:?}")]
    NotReady(ErrorCode),
    #[error("password violates the policy: {}", .0.join(", "))]
    Policy(Vec<&'static str>),
    #[error("{message}")]
    Invalid { pointer: String, message: String },
    #[error("no such resource")]
    NotFound,
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Hashing(#[from] HashError),
    #[error("{0}")]
    Internal(String),
}

/// What the services need from the outside.
pub struct Protected<'a> {
    pub config: &'a Config,
    pub store: &'a dyn Store,
    pub hasher: &'a dyn PasswordHashing,
    pub clock: &'a dyn Clock,
    pub random: &'a dyn Random,
    pub key: &'a ServerKey,
}

/// The logged-in user and their session.
pub struct Me<'a> {
    pub user: &'a User,
    pub session_id: &'a str,
    pub ip: Option<&'a str>,
    /// When the user last proved who they are in this session.
    pub authenticated_at: Millis,
}

/// A TOTP enrollment to show the user (the secret is shown once, here).
#[derive(Debug, Clone)]
pub struct TotpEnrollment {
    pub otpauth_uri: String,
    pub secret_base32: String,
    pub qr_svg: String,
    pub expires_at: Millis,
}

/// The questions and which of them the user answered.
#[derive(Debug, Clone)]
pub struct SecretQuestions {
    pub questions: Vec<String>,
    pub answered: Vec<String>,
    pub min_answers: usize,
    pub min_answer_length: usize,
}

impl Protected<'_> {
    fn audit(&self, me: &Me<'_>, event: &str, outcome: &str, details: serde_json::Value) -> Effect {
        Effect::Audit(self.event(me, event, outcome, details))
    }

    fn event(&self, me: &Me<'_>, event: &str, outcome: &str, details: serde_json::Value) -> AuditEvent {
        AuditEvent {
            id: random_id(self.random),
            at: self.clock.now_ms(),
            event: event.to_owned(),
            actor: format!("user:{}", me.user.username),
            user_id: Some(me.user.id.clone()),
            username: Some(me.user.username.clone()),
            flow_id: None,
            session_id: Some(me.session_id.to_owned()),
            ip: me.ip.map(str::to_owned),
            outcome: outcome.to_owned(),
            details,
        }
    }

    /// Changes the password after checking the old one under the lockout (`OLD_PASSWORD`; past the maximum the
    /// user is locked with `LockReason.MaxWrongOldPassword` and the session ends) and the new one against the
    /// policy — the same check as the set-password step.
    pub async fn change_password(&self, me: &Me<'_>, old: String, new: String) -> Result<(), ProtectedError> {
        let user = me.user;
        let now = self.clock.now_ms();
        let reason = lock_reason::MAX_WRONG_OLD_PASSWORD;
        let (right, mut effects) = self.counted_own_password(me, old.clone(), OLD_PASSWORD_METHOD, reason).await?;
        if !right {
            let details = serde_json::json!({ "reason": "wrong_old_password" });
            effects.push(self.audit(me, "password.change_failed", "failed", details));
            self.store.apply(&effects).await?;
            return Err(ProtectedError::Wrong { code: ErrorCode::OldPasswordWrong, pointer: "/oldPassword" });
        }
        let policy = &self.config.password_policy;
        let violations = password_policy::check_for_user(policy, self.hasher, user, &new, Some(&old)).await?;
        if !violations.is_empty() {
            // The old password was right: give that attempt back.
            self.store.apply(&effects).await?;
            return Err(ProtectedError::Policy(violations));
        }
        let password_hash = self.hasher.hash(new).await?;
        let password_method = self.config.authentication.password_method_id.clone();
        effects.push(Effect::SetPassword { user_id: user.id.clone(), password_hash, at: now });
        effects.push(Effect::ResetCounters {
            user_id: user.id.clone(),
            method_ids: vec![password_method, OLD_PASSWORD_METHOD.into()],
        });
        // Whoever else holds a session (maybe the reason for the change) is logged out; this one stays.
        effects.push(Effect::EndUserSessions {
            user_id: user.id.clone(),
            except: Some(me.session_id.to_owned()),
            at: now,
        });
        effects.push(self.audit(me, "password.changed", "ok", serde_json::json!({ "by": "user" })));
        self.store.apply(&effects).await?;
        Ok(())
    }

    /// Refuses a sensitive change unless the user proved who they are within `step_up_seconds`.
    fn require_recent(&self, me: &Me<'_>) -> Result<(), ProtectedError> {
        let window =
            i64::try_from(self.config.authentication.session.step_up_seconds.saturating_mul(1000)).unwrap_or(i64::MAX);
        if self.clock.now_ms().saturating_sub(me.authenticated_at) > window {
            return Err(ProtectedError::StepUpRequired);
        }
        Ok(())
    }

    /// A step-up: the password again, counted on the password's counter like a login (past the limit the user
    /// is locked and the session ends). Sensitive changes are allowed for `step_up_seconds` after.
    pub async fn reauthenticate(&self, me: &Me<'_>, password: String) -> Result<(), ProtectedError> {
        let now = self.clock.now_ms();
        let method = self.config.authentication.password_method_id.clone();
        let reason = lock_reason::too_many_auth_attempts(&method);
        let (right, mut effects) = self.counted_own_password(me, password, &method, &reason).await?;
        if !right {
            effects.push(self.audit(me, "session.reauthentication_failed", "failed", serde_json::json!({})));
            self.store.apply(&effects).await?;
            return Err(ProtectedError::Wrong { code: ErrorCode::PasswordWrong, pointer: "/password" });
        }
        // Like a login, a proven password clears its earlier failures.
        effects.push(Effect::ResetCounters { user_id: me.user.id.clone(), method_ids: vec![method] });
        effects.push(Effect::ReauthenticateSession { id: me.session_id.to_owned(), at: now });
        effects.push(self.audit(me, "session.reauthenticated", "ok", serde_json::json!({})));
        self.store.apply(&effects).await?;
        Ok(())
    }

    /// Checks the user's own password under the lockout of `method_id`: whether it is right, and the effects to
    /// write with the outcome. A check that locks the user (or finds the counter used up) ends the session and
    /// answers `Locked` here.
    async fn counted_own_password(
        &self,
        me: &Me<'_>,
        password: String,
        method_id: &str,
        lock_reason: &str,
    ) -> Result<(bool, Vec<Effect>), ProtectedError> {
        let now = self.clock.now_ms();
        let (stored, hasher) = (me.user.password_hash.clone(), self.hasher);
        let check = async move {
            match stored {
                Some(h) => match hasher.verify(password, h).await {
                    Ok(v) => Ok(v.matches),
                    Err(HashError::UnsupportedHash(_)) => Ok(false),
                    Err(e) => Err(e.into()),
                },
                None => Ok(false),
            }
        };
        let over_limit = OverLimit::Lock { reason: lock_reason.to_owned() };
        let counter =
            Counter { method_id: method_id.to_owned(), max: self.config.lockout.max_for(method_id), over_limit };
        let attempt = Attempt { user_id: &me.user.id, counter: &counter, now };
        let mut effects = Vec::new();
        match counted_check(self.store, attempt, &mut effects, check).await.map_err(engine_error)? {
            Counted::Right => Ok((true, effects)),
            Counted::Wrong(Failure { locked: false, .. }) => Ok((false, effects)),
            Counted::Exhausted | Counted::Wrong(Failure { locked: true, .. }) => {
                effects.push(Effect::EndAuthSession { id: me.session_id.to_owned(), at: now });
                effects.push(self.audit(me, "user.locked", "ok", serde_json::json!({ "reason": lock_reason })));
                self.store.apply(&effects).await?;
                Err(ProtectedError::Locked)
            }
        }
    }

    /// Ends the session.
    pub async fn logout(&self, me: &Me<'_>) -> Result<(), ProtectedError> {
        let now = self.clock.now_ms();
        let audit = self.audit(me, "logout", "ok", serde_json::json!({}));
        self.store.apply(&[Effect::EndAuthSession { id: me.session_id.to_owned(), at: now }, audit]).await?;
        Ok(())
    }

    /// Starts a TOTP enrollment (replacing an unconfirmed one); refused while a confirmed one exists.
    pub async fn enroll_totp(&self, me: &Me<'_>) -> Result<TotpEnrollment, ProtectedError> {
        if self.store.get_totp(&me.user.id).await?.is_some_and(|t| t.confirmed) {
            return Err(ProtectedError::Conflict(ErrorCode::TotpAlreadyEnrolled));
        }
        let cfg = &self.config.authentication.totp;
        let secret = totp::new_secret(self.random);
        let uri = totp::otpauth_uri(cfg, &secret, &me.user.username).map_err(internal)?;
        let qr = totp::qr_svg(&uri).map_err(internal)?;
        let now = self.clock.now_ms();
        let sealed_secret = self.key.seal(self.random, TOTP_SEAL_CONTEXT, &secret);
        let audit = self.audit(me, "totp.enrollment_started", "ok", serde_json::json!({}));
        self.store.apply(&[Effect::SetTotp { user_id: me.user.id.clone(), sealed_secret, at: now }, audit]).await?;
        let timeout = i64::try_from(cfg.enrollment_timeout_seconds * 1000).unwrap_or(i64::MAX);
        Ok(TotpEnrollment {
            otpauth_uri: uri,
            secret_base32: totp::base32_secret(&secret),
            qr_svg: qr,
            expires_at: now.saturating_add(timeout),
        })
    }

    /// Confirms the pending enrollment with a first valid code (which is then used up).
    pub async fn confirm_totp(&self, me: &Me<'_>, otp: &str) -> Result<(), ProtectedError> {
        let cfg = &self.config.authentication.totp;
        let now = self.clock.now_ms();
        let timeout = i64::try_from(cfg.enrollment_timeout_seconds * 1000).unwrap_or(i64::MAX);
        let pending = self.store.get_totp(&me.user.id).await?.filter(|t| !t.confirmed && now - t.created_at <= timeout);
        let Some(pending) = pending else {
            return Err(ProtectedError::NotReady(ErrorCode::NoPendingEnrollment));
        };
        let secret = self.key.open(TOTP_SEAL_CONTEXT, &pending.sealed_secret).map_err(internal)?;
        let step = totp::matching_step(cfg, &secret, otp, now).map_err(internal)?;
        let accepted = match step {
            Some(step) => self.store.consume_totp_step(&me.user.id, step).await?,
            None => false,
        };
        if !accepted {
            return Err(ProtectedError::Wrong { code: ErrorCode::OtpWrong, pointer: "/otp" });
        }
        let audit = self.audit(me, "totp.enrolled", "ok", serde_json::json!({}));
        self.store.apply(&[Effect::ConfirmTotp { user_id: me.user.id.clone() }, audit]).await?;
        Ok(())
    }

    pub async fn remove_totp(&self, me: &Me<'_>) -> Result<(), ProtectedError> {
        self.require_recent(me)?;
        let audit = self.audit(me, "totp.removed", "ok", serde_json::json!({}));
        self.store.apply(&[Effect::DeleteTotp { user_id: me.user.id.clone() }, audit]).await?;
        Ok(())
    }

    /// Sets (or with `None` removes) the number SMS codes go to; returns it as stored.
    pub async fn set_phone(&self, me: &Me<'_>, phone: Option<&str>) -> Result<Option<String>, ProtectedError> {
        self.require_recent(me)?;
        let phone = match phone {
            Some(p) => Some(
                crate::admin::validate_phone(p)
                    .map_err(|e| ProtectedError::Invalid { pointer: "/phone".into(), message: e.to_string() })?,
            ),
            None => None,
        };
        let now = self.clock.now_ms();
        let audit = self.audit(me, "phone.changed", "ok", serde_json::json!({ "removed": phone.is_none() }));
        let effect =
            Effect::SetContextItem { user_id: me.user.id.clone(), key: "phone".into(), value: phone.clone(), at: now };
        self.store.apply(&[effect, audit]).await?;
        Ok(phone)
    }

    pub async fn start_device_activation(&self, me: &Me<'_>) -> Result<Activation, ProtectedError> {
        self.require_recent(me)?;
        let audit = self.event(me, "device.activation_started", "ok", serde_json::json!({ "by": "user" }));
        let now = self.clock.now_ms();
        start_activation(self.store, self.key, self.random, self.config, me.user, now, audit).await.map_err(internal)
    }

    pub async fn devices(&self, me: &Me<'_>) -> Result<Vec<Device>, ProtectedError> {
        Ok(self.store.list_devices(&me.user.id).await?)
    }

    async fn own_device(&self, me: &Me<'_>, id: &str) -> Result<Device, ProtectedError> {
        self.store.get_device(id).await?.filter(|d| d.user_id == me.user.id).ok_or(ProtectedError::NotFound)
    }

    pub async fn rename_device(&self, me: &Me<'_>, id: &str, name: &str) -> Result<Device, ProtectedError> {
        let name = name.trim().to_owned();
        if name.is_empty() || name.chars().count() > 64 {
            return Err(ProtectedError::Invalid {
                pointer: "/displayName".into(),
                message: "displayName must be 1–64 characters".into(),
            });
        }
        let device = self.own_device(me, id).await?;
        let audit = self.audit(me, "device.renamed", "ok", serde_json::json!({ "device": device.id }));
        let effect = Effect::RenameDevice { id: device.id.clone(), user_id: me.user.id.clone(), display_name: name };
        self.store.apply(&[effect, audit]).await?;
        self.own_device(me, id).await
    }

    pub async fn remove_device(&self, me: &Me<'_>, id: &str) -> Result<(), ProtectedError> {
        let device = self.own_device(me, id).await?;
        let audit = self.audit(me, "device.removed", "ok", serde_json::json!({ "device": device.id, "by": "user" }));
        self.store.apply(&[Effect::DeleteDevice { id: device.id, user_id: me.user.id.clone() }, audit]).await?;
        Ok(())
    }

    pub async fn secret_questions(&self, me: &Me<'_>) -> Result<SecretQuestions, ProtectedError> {
        let answered = self.store.get_secret_answers(&me.user.id).await?.into_iter().map(|(q, _)| q).collect();
        let cfg = &self.config.public_self_service.secret_questions;
        Ok(SecretQuestions {
            questions: cfg.questions.clone(),
            answered,
            min_answers: cfg.min_answers,
            min_answer_length: cfg.min_answer_length,
        })
    }

    /// Replaces every secret answer (see [`secret_answers::set_answers`]).
    pub async fn set_secret_answers(
        &self,
        me: &Me<'_>,
        answers: &[(String, String)],
    ) -> Result<SecretQuestions, ProtectedError> {
        self.require_recent(me)?;
        let cfg = &self.config.public_self_service.secret_questions;
        let effect = secret_answers::set_answers(cfg, self.key, &me.user.id, answers, self.clock.now_ms())
            .map_err(|e| ProtectedError::Invalid { pointer: e.pointer, message: e.message })?;
        let audit = self.audit(me, "secret_answers.set", "ok", serde_json::json!({ "count": answers.len() }));
        self.store.apply(&[effect, audit]).await?;
        self.secret_questions(me).await
    }
}

fn internal(e: impl std::fmt::Display) -> ProtectedError {
    ProtectedError::Internal(e.to_string())
}

fn engine_error(e: crate::flow::EngineError) -> ProtectedError {
    match e {
        crate::flow::EngineError::Store(s) => ProtectedError::Store(s),
        crate::flow::EngineError::Hashing(h) => ProtectedError::Hashing(h),
        other => ProtectedError::Internal(other.to_string()),
    }
}
