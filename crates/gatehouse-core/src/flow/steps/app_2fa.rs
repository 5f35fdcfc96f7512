//! The Gatehouse authenticator (next step `APP_2FA_POLLING_OR_OFFLINE_REQUIRED`, with the `number` to
//! match): a push request approved on a device, or an offline QR challenge answered with the device's code.
//! Denials and wrong offline codes count on the `[authenticator]` counter wherever the step runs.

use crate::authenticator::new_number;
use crate::config::App2faStep;
use crate::flow::FlowKind;
use crate::flow::app_factor::{new_approval, offline_challenge_text, offline_code_matches};
use crate::flow::codes::{ErrorCode, FlowError, NextStep, Outcome};
use crate::flow::engine::{Ctx, EngineError};
use crate::flow::factor::Check;
use crate::flow::session::{AppChallenge, Scratch};
use crate::ports::{ApprovalStatus, Effect};

pub(crate) const KINDS: &[FlowKind] = &[FlowKind::Authentication, FlowKind::PublicSelfService];

impl Ctx<'_> {
    fn purpose<'c>(&self, cfg: &'c App2faStep) -> &'c str {
        match (&cfg.purpose, self.kind()) {
            (Some(p), _) => p,
            (None, FlowKind::Authentication) => "login",
            (None, _) => "unlock",
        }
    }

    fn app_waiting(&mut self, number: u32) -> Outcome {
        self.attributes.insert("number".into(), serde_json::json!(number));
        Outcome::Continue(Some(NextStep::App2faPollingOrOfflineRequired))
    }

    fn app_challenge(&self) -> Result<AppChallenge, EngineError> {
        match &self.state.scratch {
            Scratch::App(c) => Ok(c.clone()),
            _ => Err(EngineError::Inconsistent("authenticator step without a request")),
        }
    }

    /// Sends the push request. A user in stealth mode (or without a device) gets a request nobody can answer.
    pub(crate) async fn enter_app(&mut self, cfg: &App2faStep) -> Result<Outcome, EngineError> {
        let purpose = self.purpose(cfg).to_owned();
        let timeout = i64::try_from(self.deps.config.authenticator.approval_timeout_seconds * 1000).unwrap_or(i64::MAX);
        let expires_at = self.now.saturating_add(timeout);
        let user_id = match self.user_id() {
            Some(id) if !self.deps.store.list_devices(&id).await?.is_empty() => Some(id),
            _ => None,
        };
        let challenge = match user_id {
            Some(user_id) => {
                let approval = new_approval(self.deps, &user_id, &purpose, self.ip, self.now);
                let c = AppChallenge {
                    approval_id: Some(approval.id.clone()),
                    number: approval.number,
                    offline: None,
                    expires_at,
                };
                self.effects.push(Effect::CreateApproval(approval));
                self.audit("approval.requested", "ok", serde_json::json!({ "kind": purpose }));
                c
            }
            None => {
                self.state.stealth = true;
                self.audit("approval.requested", "stealth", serde_json::json!({ "kind": purpose }));
                AppChallenge { approval_id: None, number: new_number(self.deps.random), offline: None, expires_at }
            }
        };
        let number = challenge.number;
        self.state.scratch = Scratch::App(challenge);
        Ok(self.app_waiting(number))
    }

    /// What became of the push request: approved → the step is passed; denied → a counted failure that ends
    /// the flow; expired → the flow ends; pending → keep polling (or go offline).
    pub(crate) async fn poll_app(&mut self) -> Result<Outcome, EngineError> {
        let challenge = self.app_challenge()?;
        let approval = match (&challenge.approval_id, self.user_id()) {
            (Some(id), Some(user_id)) => self.deps.store.get_approval(id).await?.filter(|a| a.user_id == user_id),
            _ => None,
        };
        let status = approval.as_ref().map_or(ApprovalStatus::Pending, |a| a.status);
        let device = approval.as_ref().and_then(|a| a.device_id.clone());
        let method = self.deps.config.authenticator.method_id.clone();
        match status {
            ApprovalStatus::Approved => {
                self.audit("approval.approved", "ok", serde_json::json!({ "device": device }));
                self.factor_passed(&method);
                self.advance().await
            }
            ApprovalStatus::Denied => {
                // The denial was counted when the device decided; where locks show, say if it locked the user.
                self.audit("approval.denied", "denied", serde_json::json!({ "device": device }));
                let locked = !self.kind().hides_locks() && self.load_user().await?.is_some_and(|u| u.locked);
                Ok(self.terminate_with(if locked { ErrorCode::UserLocked } else { ErrorCode::App2faDenied }))
            }
            ApprovalStatus::Cancelled => Ok(self.terminate_with(ErrorCode::App2faExpired)),
            ApprovalStatus::Pending if self.now >= challenge.expires_at => {
                self.audit("approval.expired", "expired", serde_json::json!({}));
                Ok(self.terminate_with(ErrorCode::App2faExpired))
            }
            ApprovalStatus::Pending => Ok(self.app_waiting(challenge.number)),
        }
    }

    /// The number to match and, once asked for, the offline challenge with its QR code.
    pub(crate) fn describe_app(&mut self) -> Result<Outcome, EngineError> {
        let challenge = self.app_challenge()?;
        if let Some(text) = &challenge.offline {
            let qr =
                crate::crypto::totp::qr_svg(text).map_err(|_| EngineError::Inconsistent("offline challenge QR"))?;
            self.attributes.insert("offlineChallenge".into(), serde_json::json!(text));
            self.attributes.insert("qrCode".into(), serde_json::json!(qr));
        }
        Ok(self.app_waiting(challenge.number))
    }

    /// Switches to offline mode: a challenge to show as a QR code; the device answers with a code.
    pub(crate) async fn offline_challenge(&mut self, cfg: &App2faStep) -> Result<Outcome, EngineError> {
        let mut challenge = self.app_challenge()?;
        let login = self.state.subject.as_ref().map(|s| s.login.clone()).unwrap_or_default();
        // Where the account must not show, the device sees the name as entered, never where it leads.
        let username = match self.load_user().await? {
            Some(user) if !self.kind().hides_locks() => user.username,
            _ => login,
        };
        let text = offline_challenge_text(self.deps, &username, self.purpose(cfg), self.now);
        challenge.offline = Some(text.clone());
        let number = challenge.number;
        self.state.scratch = Scratch::App(challenge);
        let qr = crate::crypto::totp::qr_svg(&text).map_err(|_| EngineError::Inconsistent("offline challenge QR"))?;
        self.attributes.insert("offlineChallenge".into(), serde_json::json!(text));
        self.attributes.insert("qrCode".into(), serde_json::json!(qr));
        Ok(self.app_waiting(number))
    }

    pub(crate) async fn offline_check(&mut self, otp: &str) -> Result<Outcome, EngineError> {
        let challenge = self.app_challenge()?;
        let Some(text) = challenge.offline.clone() else {
            return Ok(Outcome::Unexpected);
        };
        // A request the device denied ends the flow, offline or not.
        if let Some(id) = &challenge.approval_id
            && self.deps.store.get_approval(id).await?.is_some_and(|a| a.status == ApprovalStatus::Denied)
        {
            return Ok(self.terminate_with(ErrorCode::App2faDenied));
        }
        let method = self.deps.config.authenticator.method_id.clone();
        let deps = self.deps;
        let user_id = self.user_id();
        let right = async {
            match &user_id {
                Some(user_id) => offline_code_matches(deps, user_id, &text, otp).await,
                None => Ok(false),
            }
        };
        let check = self.verify_factor(&method, right).await?;
        if check == Check::Right {
            self.audit("approval.offline", "ok", serde_json::json!({}));
            self.factor_passed(&method);
            return self.advance().await;
        }
        if let Some(outcome) = self.locked_answer(check) {
            return Ok(outcome);
        }
        self.audit("approval.failed", "wrong_offline_code", serde_json::json!({ "method": method }));
        Ok(Outcome::Retry {
            next: NextStep::App2faPollingOrOfflineRequired,
            errors: vec![FlowError::at(ErrorCode::App2faCodeWrong, "/otp")],
        })
    }
}
