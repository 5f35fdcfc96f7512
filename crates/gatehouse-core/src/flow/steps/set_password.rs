//! Set Password (next step `NEW_PASSWORD_REQUIRED`): the new password must pass the policy.

use crate::config::SetPasswordStep;
use crate::flow::FlowKind;
use crate::flow::codes::{ErrorCode, FlowError, NextStep, Outcome};
use crate::flow::engine::{Ctx, EngineError};
use crate::password_policy;
use crate::ports::Effect;

pub(crate) const KINDS: &[FlowKind] = &[FlowKind::PublicSelfService];
pub(crate) const NEXT: Outcome = Outcome::Continue(Some(NextStep::NewPasswordRequired));

impl Ctx<'_> {
    /// Sets the new password if it passes the policy. A violation is no failed attempt: the user may retry.
    pub(crate) async fn set_password(
        &mut self,
        cfg: &SetPasswordStep,
        new_password: String,
    ) -> Result<Outcome, EngineError> {
        let user = match (self.state.verified, self.load_user().await?) {
            (true, Some(user)) => user,
            // Configuration validation puts a verification step first, and stealth flows never get here.
            _ => {
                return Err(EngineError::Inconsistent("set-password reached without a verified user"));
            }
        };
        let policy = &self.deps.config.password_policy;
        let violations = password_policy::check_for_user(policy, self.deps.hasher, &user, &new_password, None).await?;
        if !violations.is_empty() {
            self.audit("password.rejected", "policy", serde_json::json!({ "violations": violations }));
            let errors = violations
                .into_iter()
                .map(|d| FlowError {
                    code: ErrorCode::PasswordPolicyViolated,
                    pointer: Some("/newPassword".into()),
                    detail: Some(d),
                })
                .collect();
            return Ok(Outcome::Retry { next: NextStep::NewPasswordRequired, errors });
        }
        let password_hash = self.deps.hasher.hash(new_password).await?;
        self.effects.push(Effect::SetPassword { user_id: user.id.clone(), password_hash, at: self.now });
        // A reset means the old password may be known to someone else: every session of the user ends.
        self.effects.push(Effect::EndUserSessions { user_id: user.id.clone(), except: None, at: self.now });
        // Failures against the old password say nothing about the new one.
        self.effects
            .push(Effect::ResetCounters { user_id: user.id.clone(), method_ids: vec![cfg.password_method_id.clone()] });
        self.audit("password.changed", "ok", serde_json::json!({}));
        self.advance().await
    }
}
