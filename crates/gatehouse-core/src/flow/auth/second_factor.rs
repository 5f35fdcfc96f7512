use std::collections::BTreeMap;

use super::{AuthCtx, Factor, Stage};
use crate::crypto::totp;
use crate::flow::codes::{ErrorCode, FlowError, NextStep, Outcome};
use crate::flow::engine::EngineError;
use crate::flow::factor::{Attempt, Counted, counted_check};
use crate::flow::session::OtpChallenge;
use crate::messages;
use crate::outbox;
use crate::random::random_code;
use crate::user::{User, lock_reason};

/// Context (sealing) of TOTP secrets at rest.
pub const TOTP_SEAL_CONTEXT: &str = "gatehouse/totp/v1";

impl AuthCtx<'_> {
    /// The second factors `user` has: a confirmed TOTP credential, a phone number for SMS codes. A configured
    /// `auth_method` narrows the choice to that factor.
    async fn factors_of(&self, user: &User) -> Result<Vec<Factor>, EngineError> {
        let mut factors = Vec::new();
        if self.deps.store.get_totp(&user.id).await?.is_some_and(|t| t.confirmed) {
            factors.push(Factor::OathOtp);
        }
        if user.context_item("phone").is_some() {
            factors.push(Factor::Mtan);
        }
        if !self.deps.store.list_devices(&user.id).await?.is_empty() {
            factors.insert(0, Factor::App2fa);
        }
        if let Some(preferred) = user.auth_method.as_deref().and_then(Factor::parse)
            && factors.contains(&preferred)
        {
            factors = vec![preferred];
        }
        Ok(factors)
    }

    pub(crate) async fn after_password(&mut self, user: &User) -> Result<Outcome, EngineError> {
        let factors = self.factors_of(user).await?;
        match factors.as_slice() {
            [] if self.deps.config.authentication.require_second_factor => {
                Ok(self.terminate(ErrorCode::SecondFactorMissing))
            }
            [] => Ok(self.complete()),
            [only] => self.enter(*only, user).await,
            _ => {
                self.state.stage = Stage::Selection;
                self.state.options = factors;
                Ok(Outcome::Continue(Some(NextStep::SelectionRequired)))
            }
        }
    }

    pub(crate) async fn select(&mut self, id: &str) -> Result<Outcome, EngineError> {
        let Some(factor) = Factor::parse(id).filter(|f| self.state.options.contains(f)) else {
            return Ok(Outcome::Retry {
                next: NextStep::SelectionRequired,
                errors: vec![FlowError::new(ErrorCode::OptionNotAvailable)],
            });
        };
        let user = self.user().await?;
        self.enter(factor, &user).await
    }

    pub(crate) async fn user(&self) -> Result<User, EngineError> {
        let id = self.state.user_id.clone().ok_or(EngineError::Inconsistent("second factor without a user"))?;
        self.deps.store.get_user(&id).await?.ok_or(EngineError::Inconsistent("the user was deleted during login"))
    }

    async fn enter(&mut self, factor: Factor, user: &User) -> Result<Outcome, EngineError> {
        match factor {
            Factor::OathOtp => {
                self.state.stage = Stage::Totp;
                Ok(Outcome::Continue(Some(NextStep::OtpRequired)))
            }
            Factor::Mtan => {
                self.state.stage = Stage::Mtan;
                self.state.mtan = Some(self.send_mtan(user, 0, 0)?);
                Ok(Outcome::Continue(Some(NextStep::MtanOtpRequired)))
            }
            Factor::App2fa => self.enter_app(user),
        }
    }

    /// Queues an SMS with a fresh code and returns its challenge.
    fn send_mtan(&mut self, user: &User, failed: u32, resends: u32) -> Result<OtpChallenge, EngineError> {
        let cfg = &self.deps.config.authentication.mtan;
        let phone = user.context_item("phone").ok_or(EngineError::Inconsistent("SMS factor without a phone number"))?;
        let alphabet: Vec<char> = cfg.otp.alphabet.chars().collect();
        let code = random_code(self.deps.random, &alphabet, cfg.otp.length);
        let lang = user
            .context_item("language")
            .filter(|l| messages::is_supported_language(l))
            .unwrap_or(&self.deps.config.messaging.default_language)
            .to_owned();
        let minutes = cfg.otp.validity_seconds.div_ceil(60).to_string();
        let text =
            messages::render_sms("mtan-otp", &lang, &BTreeMap::from([("otp", code.clone()), ("minutes", minutes)]))?;
        let message = outbox::seal_sms(self.deps.key, self.deps.random, self.now, phone, "mtan-otp", &text);
        self.effects.push(crate::ports::Effect::Enqueue(message));
        let validity = i64::try_from(cfg.otp.validity_seconds * 1000).unwrap_or(i64::MAX);
        self.audit("otp.sent", "ok", serde_json::json!({ "channel": "sms", "resend": resends }));
        Ok(OtpChallenge {
            code_hash: self.deps.key.hash_otp(self.session_id, &code),
            expires_at: self.now.saturating_add(validity),
            failed,
            resends,
        })
    }

    /// A wrong answer that locked the user ends the flow with `USER_LOCKED`.
    pub(crate) fn locked_out(&mut self, method: &str, count: i64) -> Outcome {
        let reason = lock_reason::too_many_auth_attempts(method);
        self.audit("user.locked", "ok", serde_json::json!({ "reason": reason, "failed_attempts": count }));
        self.terminate(ErrorCode::UserLocked)
    }

    pub(crate) async fn check_totp(&mut self, otp: &str) -> Result<Outcome, EngineError> {
        let user = self.user().await?;
        let cfg = self.deps.config.authentication.totp.clone();
        let method = cfg.method_id.clone();
        let max = self.deps.config.lockout.max_for(&method);
        let credential = self.deps.store.get_totp(&user.id).await?.filter(|c| c.confirmed);
        let (store, key, now) = (self.deps.store, self.deps.key, self.now);
        let check = async {
            let Some(credential) = credential else { return Ok(false) };
            let secret = key
                .open(TOTP_SEAL_CONTEXT, &credential.sealed_secret)
                .map_err(|_| EngineError::Inconsistent("TOTP secret cannot be opened with this server key"))?;
            let step = totp::matching_step(&cfg, &secret, otp, now).map_err(|_| EngineError::Inconsistent("TOTP"))?;
            // A code is good once: its time step must be later than the last one accepted.
            match step {
                Some(step) => Ok(store.consume_totp_step(&user.id, step).await?),
                None => Ok(false),
            }
        };
        let mut effects = Vec::new();
        let reason = lock_reason::too_many_auth_attempts(&method);
        let attempt = Attempt { user_id: &user.id, method_id: &method, max, lock_reason: &reason, now };
        let counted = counted_check(store, attempt, &mut effects, check).await?;
        self.effects.extend(effects);
        match counted {
            Counted::Right => {
                self.state.passed.push(method);
                Ok(self.complete())
            }
            Counted::Exhausted => Ok(self.terminate(ErrorCode::UserLocked)),
            Counted::Wrong { count, locked: true } => Ok(self.locked_out(&method, count)),
            Counted::Wrong { .. } => {
                self.audit("login.failed", "wrong_otp", serde_json::json!({ "method": method }));
                Ok(Outcome::Retry {
                    next: NextStep::OtpRequired,
                    errors: vec![FlowError::at(ErrorCode::OtpWrong, "/otp")],
                })
            }
        }
    }

    pub(crate) async fn check_mtan(&mut self, otp: &str) -> Result<Outcome, EngineError> {
        let user = self.user().await?;
        let cfg = self.deps.config.authentication.mtan.clone();
        let challenge = self.state.mtan.clone().ok_or(EngineError::Inconsistent("SMS step without a code"))?;
        if self.now >= challenge.expires_at {
            return Ok(Outcome::Retry {
                next: NextStep::MtanOtpRequired,
                errors: vec![FlowError::at(ErrorCode::MtanOtpExpired, "/otp")],
            });
        }
        let answer: String = otp.chars().filter(|c| !c.is_whitespace()).collect();
        let max = self.deps.config.lockout.max_for(&cfg.method_id);
        let (key, session_id) = (self.deps.key, self.session_id);
        let check = async { Ok(key.verify_otp(session_id, &answer, &challenge.code_hash)) };
        let mut effects = Vec::new();
        let reason = lock_reason::too_many_auth_attempts(&cfg.method_id);
        let attempt =
            Attempt { user_id: &user.id, method_id: &cfg.method_id, max, lock_reason: &reason, now: self.now };
        let counted = counted_check(self.deps.store, attempt, &mut effects, check).await?;
        self.effects.extend(effects);
        match counted {
            Counted::Right => {
                self.state.passed.push(cfg.method_id);
                self.state.mtan = None;
                Ok(self.complete())
            }
            Counted::Exhausted => Ok(self.terminate(ErrorCode::UserLocked)),
            Counted::Wrong { count, locked: true } => Ok(self.locked_out(&cfg.method_id, count)),
            Counted::Wrong { .. } => {
                let failed = challenge.failed + 1;
                self.state.mtan = Some(OtpChallenge { failed, ..challenge });
                self.audit("login.failed", "wrong_otp", serde_json::json!({ "method": cfg.method_id }));
                // `max_wrong_checks = n` allows n + 1 tries of one code, as the product counts them.
                if failed > cfg.max_wrong_checks {
                    return Ok(self.terminate(ErrorCode::MtanOtpWrong));
                }
                Ok(Outcome::Retry {
                    next: NextStep::MtanOtpRequired,
                    errors: vec![FlowError::at(ErrorCode::MtanOtpWrong, "/otp")],
                })
            }
        }
    }

    pub(crate) async fn resend_mtan(&mut self) -> Result<Outcome, EngineError> {
        let challenge = self.state.mtan.clone().ok_or(EngineError::Inconsistent("SMS step without a code"))?;
        if challenge.resends >= self.deps.config.authentication.mtan.max_resends {
            return Ok(Outcome::Retry {
                next: NextStep::MtanOtpRequired,
                errors: vec![FlowError::new(ErrorCode::ResendLimitReached)],
            });
        }
        let user = self.user().await?;
        self.state.mtan = Some(self.send_mtan(&user, challenge.failed, challenge.resends + 1)?);
        Ok(Outcome::Continue(Some(NextStep::MtanOtpRequired)))
    }
}
