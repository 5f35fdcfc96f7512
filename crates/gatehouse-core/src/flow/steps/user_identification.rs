//! User Identification (next step `USERNAME_REQUIRED`) with the flow's restrictions and stealth mode.

use crate::flow::FlowKind;
use crate::flow::codes::{FlowError, NextStep, Outcome};
use crate::flow::engine::{Ctx, EngineError};
use crate::flow::restrictions::{self, Verdict};
use crate::flow::session::Subject;
use crate::user::normalize_login;

pub(crate) const KINDS: &[FlowKind] = &[FlowKind::PublicSelfService];
pub(crate) const NEXT: Outcome = Outcome::Continue(Some(NextStep::UsernameRequired));

impl Ctx<'_> {
    /// Identifies the user. Unless a restriction with feedback refuses, this succeeds for everyone — unknown,
    /// invalid and locked users go on in stealth mode and can never pass the verification that follows.
    pub(crate) async fn identify(&mut self, username: &str) -> Result<Outcome, EngineError> {
        let login = normalize_login(username);
        let user = self.deps.store.find_user_by_login(&login).await?;
        let max_unlocks = self.deps.config.public_self_service.max_number_of_unlocks;
        let verdict = match self.flow.restrictions {
            Some(r) => restrictions::evaluate(r, user.as_ref(), self.now, max_unlocks),
            None => restrictions::Verdict::Allowed,
        };
        let user_id = user.as_ref().map(|u| u.id.clone());
        self.state.subject = Some(Subject { login, user_id });
        self.user_read = Some(user);
        self.identified();
        match verdict {
            Verdict::Refused { code, feedback: true } => {
                self.audit(
                    "flow.identified",
                    "refused",
                    serde_json::json!({ "code": code.as_str(), "feedback": true }),
                );
                self.state.subject = None;
                Ok(Outcome::Retry { next: NextStep::UsernameRequired, errors: vec![FlowError::new(code)] })
            }
            Verdict::Refused { code, feedback: false } => {
                self.state.stealth = true;
                self.audit("flow.identified", "stealth", serde_json::json!({ "code": code.as_str() }));
                self.advance().await
            }
            Verdict::Allowed => {
                self.audit("flow.identified", "ok", serde_json::json!({}));
                self.advance().await
            }
        }
    }
}
