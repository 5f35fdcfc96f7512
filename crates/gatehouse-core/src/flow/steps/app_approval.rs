use crate::authenticator::new_number;
use crate::config::App2faApprovalStep;
use crate::flow::app_factor::{new_approval, offline_challenge_text, offline_code_matches};
use crate::flow::codes::{ErrorCode, FlowError, NextStep, Outcome};
use crate::flow::engine::{Ctx, EngineError};
use crate::flow::session::{PssAppChallenge, Scratch};
use crate::ports::{ApprovalStatus, Effect};

impl Ctx<'_> {
    fn app_waiting(&mut self, number: u32) -> Outcome {
        self.attributes.insert("number".into(), serde_json::json!(number));
        Outcome::Continue(Some(NextStep::App2faPollingOrOfflineRequired))
    }

    fn app_challenge(&self) -> Result<PssAppChallenge, EngineError> {
        match &self.state.scratch {
            Scratch::App(c) => Ok(c.clone()),
            _ => Err(EngineError::Inconsistent("approval step without a request")),
        }
    }

    /// Sends the push request. A user in stealth mode (or without a device) gets a request nobody can answer.
    pub(crate) async fn enter_app(&mut self, cfg: &App2faApprovalStep) -> Result<Outcome, EngineError> {
        let timeout = i64::try_from(self.deps.config.authenticator.approval_timeout_seconds * 1000).unwrap_or(i64::MAX);
        let expires_at = self.now.saturating_add(timeout);
        let user_id = match self.user_id() {
            Some(id) if !self.deps.store.list_devices(&id).await?.is_empty() => Some(id),
            _ => None,
        };
        let challenge = match user_id {
            Some(user_id) => {
                let approval = new_approval(self.deps, &user_id, &cfg.purpose, self.ip, self.now);
                let c = PssAppChallenge {
                    approval_id: Some(approval.id.clone()),
                    number: approval.number,
                    offline: None,
                    expires_at,
                };
                self.effects.push(Effect::CreateApproval(approval));
                self.audit("approval.requested", "ok", serde_json::json!({ "kind": cfg.purpose }));
                c
            }
            None => {
                self.state.stealth = true;
                self.audit("approval.requested", "stealth", serde_json::json!({ "kind": cfg.purpose }));
                PssAppChallenge { approval_id: None, number: new_number(self.deps.random), offline: None, expires_at }
            }
        };
        let number = challenge.number;
        self.state.scratch = Scratch::App(challenge);
        Ok(self.app_waiting(number))
    }

    pub(crate) async fn poll_app(&mut self, _cfg: &App2faApprovalStep) -> Result<Outcome, EngineError> {
        let challenge = self.app_challenge()?;
        let approval = match &challenge.approval_id {
            Some(id) => self.deps.store.get_approval(id).await?,
            None => None,
        };
        let status = approval.as_ref().map_or(ApprovalStatus::Pending, |a| a.status);
        let method = self.deps.config.authenticator.method_id.clone();
        match status {
            ApprovalStatus::Approved => {
                self.state.verified = true;
                self.state.methods_passed.insert(method);
                self.audit("approval.approved", "ok", serde_json::json!({}));
                self.advance().await
            }
            ApprovalStatus::Denied => {
                // A denial is a failed attempt of the factor.
                self.verify_factor(&method, |_| false).await?;
                self.audit("approval.denied", "denied", serde_json::json!({}));
                Ok(self.terminate(vec![FlowError::new(ErrorCode::App2faDenied)]))
            }
            ApprovalStatus::Cancelled => Ok(self.terminate(vec![FlowError::new(ErrorCode::App2faExpired)])),
            ApprovalStatus::Pending if self.now >= challenge.expires_at => {
                self.audit("approval.expired", "expired", serde_json::json!({}));
                Ok(self.terminate(vec![FlowError::new(ErrorCode::App2faExpired)]))
            }
            ApprovalStatus::Pending => Ok(self.app_waiting(challenge.number)),
        }
    }

    pub(crate) async fn offline_challenge(&mut self, cfg: &App2faApprovalStep) -> Result<Outcome, EngineError> {
        let mut challenge = self.app_challenge()?;
        let login = self.state.subject.as_ref().map(|s| s.login.clone()).unwrap_or_default();
        let text = offline_challenge_text(self.deps, &login, &cfg.purpose, self.now);
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
        let method = self.deps.config.authenticator.method_id.clone();
        let matches = match self.user_id() {
            Some(user_id) => offline_code_matches(self.deps, &user_id, &text, otp).await?,
            None => false,
        };
        if self.verify_factor(&method, |_| matches).await? {
            if let Some(id) = challenge.approval_id {
                self.effects.push(Effect::CancelApproval { id, at: self.now });
            }
            self.state.verified = true;
            self.state.methods_passed.insert(method);
            self.audit("approval.offline", "ok", serde_json::json!({}));
            return self.advance().await;
        }
        Ok(Outcome::Retry {
            next: NextStep::App2faPollingOrOfflineRequired,
            errors: vec![FlowError::at(ErrorCode::App2faCodeWrong, "/otp")],
        })
    }
}
