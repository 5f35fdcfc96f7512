//! SMS Identity Verification: a code by SMS to the number on record, stealth like the email step (see
//! [`super::sent_otp`]). Next step `SMS_OTP_REQUIRED` (our code; the product documents none).

use super::sent_otp::{Channel, SentOtp};
use crate::config::SmsVerificationStep;
use crate::flow::FlowKind;
use crate::flow::codes::{ErrorCode, NextStep, Outcome};
use crate::flow::engine::{Ctx, EngineError};

pub(crate) const KINDS: &[FlowKind] = &[FlowKind::PublicSelfService];

fn settings(cfg: &SmsVerificationStep) -> SentOtp<'_> {
    SentOtp {
        channel: Channel::Sms,
        item: &cfg.phone_item,
        template: &cfg.template,
        otp: &cfg.otp,
        method_id: &cfg.method_id,
        max_failed: cfg.max_failed_attempts,
        max_resends: cfg.max_resends,
        next: NextStep::SmsOtpRequired,
        wrong: ErrorCode::SmsOtpWrong,
        expired: ErrorCode::SmsOtpExpired,
    }
}

impl Ctx<'_> {
    pub(crate) async fn enter_sms_otp(&mut self, cfg: &SmsVerificationStep) -> Result<Outcome, EngineError> {
        self.otp_enter(&settings(cfg)).await
    }

    pub(crate) async fn check_sms_otp(
        &mut self,
        cfg: &SmsVerificationStep,
        answer: &str,
    ) -> Result<Outcome, EngineError> {
        self.otp_check(&settings(cfg), answer).await
    }

    pub(crate) async fn resend_sms_otp(&mut self, cfg: &SmsVerificationStep) -> Result<Outcome, EngineError> {
        self.otp_resend(&settings(cfg)).await
    }
}
