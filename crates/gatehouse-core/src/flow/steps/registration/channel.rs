//! Email Verification and Phone Number Verification of registration: a code to the address the visitor
//! entered. In stealth mode, when the flow's first verified item already belongs to an account, the owner gets
//! a notice instead of a code and the step can never be passed — the answers, the store calls and the queued
//! message (one mail or SMS either way) are those of a new address.

use std::collections::BTreeMap;

use crate::config::{OtpConfig, PhoneVerificationStep, RegistrationVerificationStep};
use crate::flow::codes::{ErrorCode, FlowError, NextStep, Outcome};
use crate::flow::engine::{Ctx, EngineError};
use crate::flow::session::{OtpChallenge, Scratch};
use crate::random::{random_code, random_token};
use crate::user::normalize_login;

const POINTER: &str = "/otp";

/// What tells the two channels apart.
pub(crate) struct Channel {
    sms: bool,
    next: NextStep,
    wrong: ErrorCode,
    expired: ErrorCode,
}

const EMAIL: Channel = Channel {
    sms: false,
    next: NextStep::EmailVerificationRequired,
    wrong: ErrorCode::EmailOtpWrong,
    expired: ErrorCode::EmailOtpExpired,
};

const PHONE: Channel = Channel {
    sms: true,
    next: NextStep::PhoneNumberVerificationRequired,
    wrong: ErrorCode::PhoneOtpWrong,
    expired: ErrorCode::PhoneOtpExpired,
};

/// One verification step's settings, whichever channel.
pub(crate) struct Verification<'c> {
    pub channel: &'c Channel,
    pub item: &'c str,
    pub otp: &'c OtpConfig,
    pub max_failed: u32,
    pub max_resends: u32,
    pub template: &'c str,
    pub notice_template: &'c str,
}

impl<'c> From<&'c RegistrationVerificationStep> for Verification<'c> {
    fn from(c: &'c RegistrationVerificationStep) -> Self {
        Self {
            channel: &EMAIL,
            item: &c.email_item,
            otp: &c.otp,
            max_failed: c.max_failed_attempts,
            max_resends: c.max_resends,
            template: &c.template,
            notice_template: &c.notice_template,
        }
    }
}

impl<'c> From<&'c PhoneVerificationStep> for Verification<'c> {
    fn from(c: &'c PhoneVerificationStep) -> Self {
        Self {
            channel: &PHONE,
            item: &c.phone_item,
            otp: &c.otp,
            max_failed: c.max_failed_attempts,
            max_resends: c.max_resends,
            template: &c.template,
            notice_template: &c.notice_template,
        }
    }
}

impl Ctx<'_> {
    pub(crate) async fn enter_verification(&mut self, v: &Verification<'_>) -> Result<Outcome, EngineError> {
        let Some(challenge) = self.issue_code(v, 0, 0).await? else {
            return Ok(self.terminate(vec![FlowError::item(ErrorCode::ItemRequired, v.item, None)]));
        };
        self.state.scratch = Scratch::Otp(challenge);
        Ok(Outcome::Continue(Some(v.channel.next)))
    }

    /// Sends a code (or, to the owner of a taken protected address, a notice); `None` without an address.
    async fn issue_code(
        &mut self,
        v: &Verification<'_>,
        failed: u32,
        resends: u32,
    ) -> Result<Option<OtpChallenge>, EngineError> {
        let Some(to) = self.draft()?.items.get(v.item).cloned() else { return Ok(None) };
        let flow = self.registration_flow()?;
        let protected = flow.stealth_mode && flow.first_verified_item() == Some(v.item);
        if protected {
            let login = normalize_login(&to);
            let value = if matches!(self.item_role(v.item), crate::config::ItemRole::Context) { &to } else { &login };
            if self.item_taken(v.item, value).await? {
                self.state.stealth = true;
            }
        }
        let validity = i64::try_from(v.otp.validity_seconds.saturating_mul(1000)).unwrap_or(i64::MAX);
        let expires_at = self.now.saturating_add(validity);
        let alphabet: Vec<char> = v.otp.alphabet.chars().collect();
        let code = random_code(self.deps.random, &alphabet, v.otp.length);
        let minutes = v.otp.validity_seconds.div_ceil(60).to_string();
        let (template, code_hash, vars) = if self.state.stealth && protected {
            // The owner learns that someone tried; the code is one nobody knows.
            let nobody = self.deps.key.hash_otp(self.session_id, &random_token(self.deps.random));
            (v.notice_template, nobody, BTreeMap::from([("minutes", minutes)]))
        } else {
            let hash = self.deps.key.hash_otp(self.session_id, &code);
            (v.template, hash, BTreeMap::from([("otp", code), ("minutes", minutes)]))
        };
        self.queue_to_visitor(v.channel.sms, &to, template, &vars)?;
        let outcome = if self.state.stealth { "stealth" } else { "ok" };
        let channel = if v.channel.sms { "sms" } else { "email" };
        self.audit("registration.otp_sent", outcome, serde_json::json!({ "channel": channel, "resend": resends }));
        Ok(Some(OtpChallenge { code_hash, expires_at, failed, resends }))
    }

    fn verification_challenge(&self) -> Result<OtpChallenge, EngineError> {
        match &self.state.scratch {
            Scratch::Otp(c) => Ok(c.clone()),
            _ => Err(EngineError::Inconsistent("verification step without a challenge")),
        }
    }

    pub(crate) async fn check_verification(
        &mut self,
        v: &Verification<'_>,
        answer: &str,
    ) -> Result<Outcome, EngineError> {
        let challenge = self.verification_challenge()?;
        if self.now >= challenge.expires_at {
            return Ok(Outcome::Retry {
                next: v.channel.next,
                errors: vec![FlowError::at(v.channel.expired, POINTER)],
            });
        }
        let answer: String = answer.chars().filter(|c| !c.is_whitespace()).collect();
        let right = self.deps.key.verify_otp(self.session_id, &answer, &challenge.code_hash);
        if right {
            let item = v.item.to_owned();
            let draft = self.draft_mut()?;
            if !draft.verified_items.contains(&item) {
                draft.verified_items.push(item);
            }
            self.audit("registration.otp_verified", "ok", serde_json::json!({}));
            return self.advance().await;
        }
        let failed = challenge.failed + 1;
        self.state.scratch = Scratch::Otp(OtpChallenge { failed, ..challenge });
        let outcome = if self.state.stealth { "stealth" } else { "wrong" };
        self.audit("registration.otp_failed", outcome, serde_json::json!({ "attempt": failed }));
        let error = FlowError::at(v.channel.wrong, POINTER);
        if failed >= v.max_failed {
            return Ok(self.terminate(vec![error]));
        }
        Ok(Outcome::Retry { next: v.channel.next, errors: vec![error] })
    }

    /// A new code replaces the old one.
    pub(crate) async fn resend_verification(&mut self, v: &Verification<'_>) -> Result<Outcome, EngineError> {
        let challenge = self.verification_challenge()?;
        if challenge.resends >= v.max_resends {
            let errors = vec![FlowError::new(ErrorCode::ResendLimitReached)];
            return Ok(Outcome::Retry { next: v.channel.next, errors });
        }
        match self.issue_code(v, challenge.failed, challenge.resends + 1).await? {
            Some(fresh) => self.state.scratch = Scratch::Otp(fresh),
            None => return Err(EngineError::Inconsistent("the verified item vanished")),
        }
        Ok(Outcome::Continue(Some(v.channel.next)))
    }
}
