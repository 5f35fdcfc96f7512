//! A code from the user's TOTP app (next step `OTP_REQUIRED`). Settings and the counter are the ones of
//! `[authentication.totp]`, wherever the step runs; each code is good once.

use crate::crypto::totp;
use crate::flow::FlowKind;
use crate::flow::codes::{ErrorCode, FlowError, NextStep, Outcome};
use crate::flow::engine::{Ctx, EngineError};
use crate::flow::factor::Check;

pub(crate) const KINDS: &[FlowKind] = &[FlowKind::Authentication, FlowKind::PublicSelfService];

/// Context (sealing) of TOTP secrets at rest.
pub const TOTP_SEAL_CONTEXT: &str = "gatehouse/totp/v1";

impl Ctx<'_> {
    pub(crate) fn enter_totp(&mut self) -> Outcome {
        Outcome::Continue(Some(NextStep::OtpRequired))
    }

    pub(crate) async fn check_totp(&mut self, otp: &str) -> Result<Outcome, EngineError> {
        let deps = self.deps;
        let cfg = &deps.config.authentication.totp;
        let user_id = self.user_id();
        let credential = match &user_id {
            Some(id) => deps.store.get_totp(id).await?.filter(|c| c.confirmed),
            None => None,
        };
        let now = self.now;
        let right = async {
            let (Some(credential), Some(user_id)) = (credential, user_id) else { return Ok(false) };
            let secret = deps
                .key
                .open(TOTP_SEAL_CONTEXT, &credential.sealed_secret)
                .map_err(|_| EngineError::Inconsistent("TOTP secret cannot be opened with this server key"))?;
            let step = totp::matching_step(cfg, &secret, otp, now).map_err(|_| EngineError::Inconsistent("TOTP"))?;
            // A code is good once: its time step must be later than the last one accepted.
            match step {
                Some(step) => Ok(deps.store.consume_totp_step(&user_id, step).await?),
                None => Ok(false),
            }
        };
        let check = self.verify_factor(&cfg.method_id, right).await?;
        if check == Check::Right {
            self.factor_passed(&cfg.method_id);
            self.audit("otp.verified", "ok", serde_json::json!({ "method": cfg.method_id }));
            return self.advance().await;
        }
        if let Some(outcome) = self.locked_answer(check) {
            return Ok(outcome);
        }
        self.audit("otp.failed", "wrong", serde_json::json!({ "method": cfg.method_id }));
        Ok(Outcome::Retry { next: NextStep::OtpRequired, errors: vec![FlowError::at(ErrorCode::OtpWrong, "/otp")] })
    }
}
