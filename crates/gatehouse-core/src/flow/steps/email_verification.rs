//! Email Identity Verification: a code by mail to the address on record (see [`super::sent_otp`]).

use super::sent_otp::{Channel, SentOtp};
use crate::config::EmailVerificationStep;
use crate::flow::FlowKind;
use crate::flow::codes::{ErrorCode, NextStep, Outcome};
use crate::flow::engine::{Ctx, EngineError};

pub(crate) const KINDS: &[FlowKind] = &[FlowKind::PublicSelfService];

fn settings(cfg: &EmailVerificationStep) -> SentOtp<'_> {
    SentOtp {
        channel: Channel::Email,
        item: &cfg.email_item,
        template: &cfg.template,
        otp: &cfg.otp,
        method_id: &cfg.method_id,
        max_failed: cfg.max_failed_attempts,
        max_resends: cfg.max_resends,
        next: NextStep::EmailOtpRequired,
        wrong: ErrorCode::EmailOtpWrong,
        expired: ErrorCode::EmailOtpExpired,
    }
}

impl Ctx<'_> {
    pub(crate) async fn enter_email_otp(&mut self, cfg: &EmailVerificationStep) -> Result<Outcome, EngineError> {
        self.otp_enter(&settings(cfg)).await
    }

    pub(crate) async fn check_email_otp(
        &mut self,
        cfg: &EmailVerificationStep,
        answer: &str,
    ) -> Result<Outcome, EngineError> {
        self.otp_check(&settings(cfg), answer).await
    }

    pub(crate) async fn resend_email_otp(&mut self, cfg: &EmailVerificationStep) -> Result<Outcome, EngineError> {
        self.otp_resend(&settings(cfg)).await
    }
}
