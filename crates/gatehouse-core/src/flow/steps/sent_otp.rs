//! A one-time code sent by mail or SMS, checked under the lockout: the email and SMS identity verifications and
//! the SMS second factor (mTAN) are this one mechanism with different settings. Entering the step sends the
//! code at once; a user in stealth mode, or one without the address or number, gets a challenge nobody can
//! answer and no message — from the outside both look the same.

use std::collections::BTreeMap;

use crate::config::OtpConfig;
use crate::flow::FlowKind;
use crate::flow::codes::{ErrorCode, FlowError, NextStep, Outcome};
use crate::flow::engine::{Ctx, EngineError};
use crate::flow::factor::Check;
use crate::flow::session::{OtpChallenge, Scratch};
use crate::random::{random_code, random_token};

/// Where the SMS second factor may run.
pub(crate) const MTAN_KINDS: &[FlowKind] = &[FlowKind::Authentication, FlowKind::PublicSelfService];

const POINTER: &str = "/otp";

#[derive(Debug, Clone, Copy)]
pub(crate) enum Channel {
    Email,
    Sms,
}

/// The settings of one sent-code step.
pub(crate) struct SentOtp<'c> {
    pub channel: Channel,
    /// Context data item holding the address or number.
    pub item: &'c str,
    pub template: &'c str,
    pub otp: &'c OtpConfig,
    pub method_id: &'c str,
    /// Wrong answers in one flow; the last one ends the flow.
    pub max_failed: u32,
    pub max_resends: u32,
    pub next: NextStep,
    pub wrong: ErrorCode,
    pub expired: ErrorCode,
}

impl Ctx<'_> {
    pub(crate) async fn otp_enter(&mut self, s: &SentOtp<'_>) -> Result<Outcome, EngineError> {
        let challenge = self.otp_issue(s, 0, 0).await?;
        self.state.scratch = Scratch::Otp(challenge);
        Ok(Outcome::Continue(Some(s.next)))
    }

    async fn otp_issue(&mut self, s: &SentOtp<'_>, failed: u32, resends: u32) -> Result<OtpChallenge, EngineError> {
        let validity = i64::try_from(s.otp.validity_seconds.saturating_mul(1000)).unwrap_or(i64::MAX);
        let expires_at = self.now.saturating_add(validity);
        let channel = match s.channel {
            Channel::Email => "email",
            Channel::Sms => "sms",
        };
        let user = self.load_user().await?;
        let target = user.and_then(|u| u.context_item(s.item).map(str::to_owned).map(|to| (u, to)));
        let Some((user, to)) = target else {
            self.state.stealth = true;
            let code_hash = self.deps.key.hash_otp(self.session_id, &random_token(self.deps.random));
            // The same kind of work as a real message: rendered and queued, as a job the worker drops.
            let login = self.state.subject.as_ref().map(|s| s.login.clone()).unwrap_or_default();
            let vars = BTreeMap::from([
                ("username", login),
                ("otp", random_token(self.deps.random)),
                ("minutes", s.otp.validity_seconds.div_ceil(60).to_string()),
            ]);
            let lang = self.deps.config.messaging.default_language.clone();
            let text = match s.channel {
                Channel::Email => self.deps.templates.render_mail(s.template, &lang, &vars)?.body,
                Channel::Sms => self.deps.templates.render_text(s.template, &lang, &vars)?,
            };
            let job = crate::outbox::seal_discard(self.deps.key, self.deps.random, self.now, s.template, &text);
            self.effects.push(crate::ports::Effect::Enqueue(job));
            self.audit("otp.sent", "stealth", serde_json::json!({ "channel": channel }));
            return Ok(OtpChallenge { code_hash, expires_at, failed, resends });
        };
        let alphabet: Vec<char> = s.otp.alphabet.chars().collect();
        let code = random_code(self.deps.random, &alphabet, s.otp.length);
        let code_hash = self.deps.key.hash_otp(self.session_id, &code);
        let minutes = s.otp.validity_seconds.div_ceil(60).to_string();
        let vars = BTreeMap::from([("otp", code), ("minutes", minutes)]);
        match s.channel {
            Channel::Email => self.queue_mail(&user, &to, s.template, vars)?,
            Channel::Sms => self.queue_sms(&user, &to, s.template, &vars)?,
        }
        self.audit("otp.sent", "ok", serde_json::json!({ "channel": channel, "resend": resends }));
        Ok(OtpChallenge { code_hash, expires_at, failed, resends })
    }

    fn otp_challenge(&self) -> Result<OtpChallenge, EngineError> {
        match &self.state.scratch {
            Scratch::Otp(c) => Ok(c.clone()),
            _ => Err(EngineError::Inconsistent("OTP step without a challenge")),
        }
    }

    pub(crate) async fn otp_check(&mut self, s: &SentOtp<'_>, answer: &str) -> Result<Outcome, EngineError> {
        let challenge = self.otp_challenge()?;
        if self.now >= challenge.expires_at {
            return Ok(Outcome::Retry { next: s.next, errors: vec![FlowError::at(s.expired, POINTER)] });
        }
        // A user locked (or invalidated) since identification silently drops into stealth mode. The check runs
        // in stealth mode too, so both make the same store calls.
        if self.kind().hides_locks() && self.restriction_violation().await?.is_some() {
            self.state.stealth = true;
        }
        let answer: String = answer.chars().filter(|c| !c.is_whitespace()).collect();
        let (key, session_id) = (self.deps.key, self.session_id);
        let right = key.verify_otp(session_id, &answer, &challenge.code_hash);
        let check = self.verify_factor(s.method_id, async { Ok(right) }).await?;
        if check == Check::Right {
            self.factor_passed(s.method_id);
            self.audit("otp.verified", "ok", serde_json::json!({ "method": s.method_id }));
            return self.advance().await;
        }
        if let Some(outcome) = self.locked_answer(check) {
            return Ok(outcome);
        }
        let failed = challenge.failed + 1;
        self.state.scratch = Scratch::Otp(OtpChallenge { failed, ..challenge });
        let outcome = if self.state.stealth { "stealth" } else { "wrong" };
        self.audit("otp.failed", outcome, serde_json::json!({ "method": s.method_id, "attempt": failed }));
        let error = FlowError::at(s.wrong, POINTER);
        if failed >= s.max_failed {
            return Ok(self.terminate(vec![error]));
        }
        Ok(Outcome::Retry { next: s.next, errors: vec![error] })
    }

    /// A new code replaces the old one: only the latest code is ever accepted.
    pub(crate) async fn otp_resend(&mut self, s: &SentOtp<'_>) -> Result<Outcome, EngineError> {
        let challenge = self.otp_challenge()?;
        if challenge.resends >= s.max_resends {
            return Ok(Outcome::Retry { next: s.next, errors: vec![FlowError::new(ErrorCode::ResendLimitReached)] });
        }
        let fresh = self.otp_issue(s, challenge.failed, challenge.resends + 1).await?;
        self.state.scratch = Scratch::Otp(fresh);
        Ok(Outcome::Continue(Some(s.next)))
    }
}

/// The SMS second factor's settings: `max_wrong_checks = n` allows n + 1 tries per flow, as the product counts.
pub(crate) fn mtan_settings(cfg: &crate::config::MtanConfig) -> SentOtp<'_> {
    SentOtp {
        channel: Channel::Sms,
        item: "phone",
        template: "mtan-otp",
        otp: &cfg.otp,
        method_id: &cfg.method_id,
        max_failed: cfg.max_wrong_checks.saturating_add(1),
        max_resends: cfg.max_resends,
        next: NextStep::MtanOtpRequired,
        wrong: ErrorCode::MtanOtpWrong,
        expired: ErrorCode::MtanOtpExpired,
    }
}

impl Ctx<'_> {
    pub(crate) async fn enter_mtan(&mut self) -> Result<Outcome, EngineError> {
        let config = self.deps.config;
        self.otp_enter(&mtan_settings(&config.authentication.mtan)).await
    }

    pub(crate) async fn check_mtan(&mut self, otp: &str) -> Result<Outcome, EngineError> {
        let config = self.deps.config;
        self.otp_check(&mtan_settings(&config.authentication.mtan), otp).await
    }

    pub(crate) async fn resend_mtan(&mut self) -> Result<Outcome, EngineError> {
        let config = self.deps.config;
        self.otp_resend(&mtan_settings(&config.authentication.mtan)).await
    }
}
