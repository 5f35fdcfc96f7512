//! The authenticator factor: a push request the user approves on a device (matching the number the browser
//! shows), or an offline QR challenge answered with a code from the device.

use super::{AppChallenge, AuthCtx, Stage};
use crate::flow::app_factor::{new_approval, offline_challenge_text, offline_code_matches};
use crate::flow::codes::{ErrorCode, FlowError, NextStep, Outcome};
use crate::flow::engine::EngineError;
use crate::flow::factor::{Attempt, Counted, counted_check};
use crate::ports::{ApprovalStatus, Effect};
use crate::user::{User, lock_reason};

impl AuthCtx<'_> {
    fn waiting(&mut self, number: u32) -> Outcome {
        self.attributes.insert("number".into(), serde_json::json!(number));
        Outcome::Continue(Some(NextStep::App2faPollingOrOfflineRequired))
    }

    pub(crate) fn enter_app(&mut self, user: &User) -> Result<Outcome, EngineError> {
        let approval = new_approval(self.deps, &user.id, "login", self.ip, self.now);
        let number = approval.number;
        self.state.stage = Stage::App;
        self.state.app = Some(AppChallenge { approval_id: approval.id.clone(), number, offline: None });
        self.effects.push(Effect::CreateApproval(approval));
        self.audit("approval.requested", "ok", serde_json::json!({ "kind": "login" }));
        Ok(self.waiting(number))
    }

    fn challenge(&self) -> Result<AppChallenge, EngineError> {
        self.state.app.clone().ok_or(EngineError::Inconsistent("authenticator step without a request"))
    }

    /// What became of the push request: approved → logged in; denied → a counted failure that ends the flow;
    /// expired → the flow ends; pending → keep polling (or go offline).
    pub(crate) async fn poll_app(&mut self) -> Result<Outcome, EngineError> {
        let challenge = self.challenge()?;
        let user = self.user().await?;
        let method = self.deps.config.authenticator.method_id.clone();
        let approval = self.deps.store.get_approval(&challenge.approval_id).await?;
        let Some(approval) = approval.filter(|a| a.user_id == user.id) else {
            return Err(EngineError::Inconsistent("the flow's approval request is gone"));
        };
        match approval.status {
            ApprovalStatus::Approved => {
                self.audit("approval.approved", "ok", serde_json::json!({ "device": approval.device_id }));
                self.state.passed.push(method);
                Ok(self.complete())
            }
            ApprovalStatus::Denied => {
                let max = self.deps.config.lockout.max_for(&method);
                let reason = lock_reason::too_many_auth_attempts(&method);
                let attempt =
                    Attempt { user_id: &user.id, method_id: &method, max, lock_reason: &reason, now: self.now };
                let mut effects = Vec::new();
                let counted = counted_check(self.deps.store, attempt, &mut effects, async { Ok(false) }).await?;
                self.effects.extend(effects);
                self.audit("approval.denied", "denied", serde_json::json!({ "device": approval.device_id }));
                match counted {
                    Counted::Wrong { count, locked: true } => Ok(self.locked_out(&method, count)),
                    _ => Ok(self.terminate(ErrorCode::App2faDenied)),
                }
            }
            ApprovalStatus::Cancelled => Ok(self.terminate(ErrorCode::App2faExpired)),
            ApprovalStatus::Pending if self.now >= approval.expires_at => {
                self.audit("approval.expired", "expired", serde_json::json!({}));
                Ok(self.terminate(ErrorCode::App2faExpired))
            }
            ApprovalStatus::Pending => Ok(self.waiting(challenge.number)),
        }
    }

    /// Switches to offline mode: a challenge to show as a QR code; the device answers with a code.
    pub(crate) async fn offline_challenge(&mut self) -> Result<Outcome, EngineError> {
        let mut challenge = self.challenge()?;
        let user = self.user().await?;
        let text = offline_challenge_text(self.deps, &user.username, "login", self.now);
        challenge.offline = Some(text.clone());
        let number = challenge.number;
        self.state.app = Some(challenge);
        let qr = crate::crypto::totp::qr_svg(&text).map_err(|_| EngineError::Inconsistent("offline challenge QR"))?;
        self.attributes.insert("offlineChallenge".into(), serde_json::json!(text));
        self.attributes.insert("qrCode".into(), serde_json::json!(qr));
        Ok(self.waiting(number))
    }

    pub(crate) async fn offline_check(&mut self, otp: &str) -> Result<Outcome, EngineError> {
        let challenge = self.challenge()?;
        let Some(text) = challenge.offline.clone() else {
            return Ok(Outcome::Unexpected);
        };
        let user = self.user().await?;
        let method = self.deps.config.authenticator.method_id.clone();
        let max = self.deps.config.lockout.max_for(&method);
        let (deps, user_id) = (self.deps, user.id.clone());
        let check = offline_code_matches(deps, &user_id, &text, otp);
        let reason = lock_reason::too_many_auth_attempts(&method);
        let attempt = Attempt { user_id: &user.id, method_id: &method, max, lock_reason: &reason, now: self.now };
        let mut effects = Vec::new();
        let counted = counted_check(self.deps.store, attempt, &mut effects, check).await?;
        self.effects.extend(effects);
        match counted {
            Counted::Right => {
                self.audit("approval.offline", "ok", serde_json::json!({}));
                self.state.passed.push(method);
                Ok(self.complete())
            }
            Counted::Exhausted => Ok(self.terminate(ErrorCode::UserLocked)),
            Counted::Wrong { count, locked: true } => Ok(self.locked_out(&method, count)),
            Counted::Wrong { .. } => {
                self.audit("login.failed", "wrong_offline_code", serde_json::json!({ "method": method }));
                Ok(Outcome::Retry {
                    next: NextStep::App2faPollingOrOfflineRequired,
                    errors: vec![FlowError::at(ErrorCode::App2faCodeWrong, "/otp")],
                })
            }
        }
    }
}
