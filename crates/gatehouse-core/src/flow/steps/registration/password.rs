//! Password registration (`registration/password/`, next step `PASSWORD_REGISTRATION_REQUIRED`): the policy
//! sees the username and every item entered so far as guessable; the hash waits in the draft.

use crate::flow::codes::{ErrorCode, FlowError, NextStep, Outcome};
use crate::flow::engine::{Ctx, EngineError};
use crate::password_policy;

impl Ctx<'_> {
    pub(crate) async fn register_password(&mut self, password: String) -> Result<Outcome, EngineError> {
        let draft = self.draft()?;
        let username = draft.username.clone().unwrap_or_default();
        let mut inputs: Vec<&str> = vec![username.as_str()];
        inputs.extend(draft.items.values().map(String::as_str));
        let violations = password_policy::check(&self.deps.config.password_policy, &password, &username, &inputs);
        if !violations.is_empty() {
            self.audit("registration.password_rejected", "policy", serde_json::json!({ "violations": violations }));
            let errors = violations
                .into_iter()
                .map(|d| FlowError { detail: Some(d), ..FlowError::at(ErrorCode::PasswordPolicyViolated, "/password") })
                .collect();
            return Ok(Outcome::Retry { next: NextStep::PasswordRegistrationRequired, errors });
        }
        let hash = self.deps.hasher.hash(password).await?;
        self.draft_mut()?.password_hash = Some(hash);
        self.audit("registration.password", "ok", serde_json::json!({}));
        self.advance().await
    }
}
