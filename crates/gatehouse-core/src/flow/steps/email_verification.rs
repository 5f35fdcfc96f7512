use std::collections::BTreeMap;

use crate::config::EmailVerificationStep;
use crate::flow::codes::{ErrorCode, FlowError, NextStep, Outcome};
use crate::flow::engine::{Ctx, EngineError};
use crate::flow::factor::{Attempt, Counted, counted_check};
use crate::flow::session::{OtpChallenge, Scratch};
use crate::random::{random_code, random_token};
use crate::user::lock_reason;

const POINTER: &str = "/otp";

impl Ctx<'_> {
    /// Entering the step sends the code at once. A user in stealth mode, or one without an address, gets a
    /// challenge nobody can answer and no message — from the outside both look the same.
    pub(crate) async fn enter_email_otp(&mut self, cfg: &EmailVerificationStep) -> Result<(), EngineError> {
        let challenge = self.issue_email_otp(cfg, 0, 0).await?;
        self.state.scratch = Scratch::Otp(challenge);
        Ok(())
    }

    async fn issue_email_otp(
        &mut self,
        cfg: &EmailVerificationStep,
        failed: u32,
        resends: u32,
    ) -> Result<OtpChallenge, EngineError> {
        let expires_at =
            self.now.saturating_add(i64::try_from(cfg.otp.validity_seconds.saturating_mul(1000)).unwrap_or(i64::MAX));
        let user = self.load_user().await?;
        let target = user.and_then(|u| u.context_item(&cfg.email_item).map(str::to_owned).map(|to| (u, to)));
        let Some((user, to)) = target else {
            self.state.stealth = true;
            let code_hash = self.deps.key.hash_otp(self.session_id, &random_token(self.deps.random));
            self.audit("otp.sent", "stealth", serde_json::json!({ "channel": "email" }));
            return Ok(OtpChallenge { code_hash, expires_at, failed, resends });
        };
        let alphabet: Vec<char> = cfg.otp.alphabet.chars().collect();
        let code = random_code(self.deps.random, &alphabet, cfg.otp.length);
        let code_hash = self.deps.key.hash_otp(self.session_id, &code);
        let minutes = cfg.otp.validity_seconds.div_ceil(60).to_string();
        self.queue_mail(&user, &to, "email-otp", BTreeMap::from([("otp", code), ("minutes", minutes)]))?;
        self.audit("otp.sent", "ok", serde_json::json!({ "channel": "email", "resend": resends }));
        Ok(OtpChallenge { code_hash, expires_at, failed, resends })
    }

    pub(crate) async fn check_email_otp(
        &mut self,
        cfg: &EmailVerificationStep,
        answer: &str,
    ) -> Result<Outcome, EngineError> {
        let Scratch::Otp(challenge) = self.state.scratch.clone() else {
            return Err(EngineError::Inconsistent("email OTP step without a challenge"));
        };
        if self.now >= challenge.expires_at {
            return Ok(Outcome::Retry {
                next: NextStep::EmailOtpRequired,
                errors: vec![FlowError::at(ErrorCode::EmailOtpExpired, POINTER)],
            });
        }
        // A user locked (or invalidated) since identification silently drops into stealth mode.
        if !self.state.stealth && self.restriction_violation().await?.is_some() {
            self.state.stealth = true;
        }
        let answer: String = answer.chars().filter(|c| !c.is_whitespace()).collect();
        if self
            .verify_factor(&cfg.method_id, |ctx| ctx.deps.key.verify_otp(ctx.session_id, &answer, &challenge.code_hash))
            .await?
        {
            self.state.verified = true;
            self.state.methods_passed.insert(cfg.method_id.clone());
            self.audit("otp.verified", "ok", serde_json::json!({ "channel": "email" }));
            return self.advance().await;
        }
        let failed = challenge.failed + 1;
        self.state.scratch = Scratch::Otp(OtpChallenge { failed, ..challenge });
        self.audit(
            "otp.failed",
            if self.state.stealth { "stealth" } else { "wrong" },
            serde_json::json!({ "attempt": failed }),
        );
        let error = FlowError::at(ErrorCode::EmailOtpWrong, POINTER);
        if failed >= cfg.max_failed_attempts {
            return Ok(self.terminate(vec![error]));
        }
        Ok(Outcome::Retry { next: NextStep::EmailOtpRequired, errors: vec![error] })
    }

    pub(crate) async fn resend_email_otp(&mut self, cfg: &EmailVerificationStep) -> Result<Outcome, EngineError> {
        let Scratch::Otp(challenge) = self.state.scratch.clone() else {
            return Err(EngineError::Inconsistent("email OTP step without a challenge"));
        };
        if challenge.resends >= cfg.max_resends {
            return Ok(Outcome::Retry {
                next: NextStep::EmailOtpRequired,
                errors: vec![FlowError::new(ErrorCode::ResendLimitReached)],
            });
        }
        // The new code replaces the old one: only the latest code is ever accepted.
        let fresh = self.issue_email_otp(cfg, challenge.failed, challenge.resends + 1).await?;
        self.state.scratch = Scratch::Otp(fresh);
        Ok(Outcome::Continue(Some(NextStep::EmailOtpRequired)))
    }

    /// Checks one answer of the identified user under the lockout. In stealth mode, or once the counter is
    /// used up, the answer is not looked at and is wrong.
    pub(crate) async fn verify_factor(
        &mut self,
        method_id: &str,
        check: impl FnOnce(&Self) -> bool,
    ) -> Result<bool, EngineError> {
        let Some(user_id) = self.user_id() else {
            return Ok(false);
        };
        let max = self.deps.config.lockout.max_for(method_id);
        let mut effects = Vec::new();
        let ctx: &Self = self;
        let reason = lock_reason::too_many_auth_attempts(method_id);
        let attempt = Attempt { user_id: &user_id, method_id, max, lock_reason: &reason, now: ctx.now };
        let counted = counted_check(ctx.deps.store, attempt, &mut effects, async { Ok(check(ctx)) }).await?;
        self.effects.extend(effects);
        match counted {
            Counted::Right => Ok(true),
            Counted::Exhausted => {
                self.audit("factor.refused", "counter_exhausted", serde_json::json!({ "method": method_id }));
                Ok(false)
            }
            Counted::Wrong { count, locked } => {
                if locked {
                    let reason = lock_reason::too_many_auth_attempts(method_id);
                    self.audit("user.locked", "ok", serde_json::json!({ "reason": reason, "failed_attempts": count }));
                }
                Ok(false)
            }
        }
    }
}
