//! Flow Continuation (next step `FLOW_CONTINUATION_TOKEN_REQUIRED`, `POST …/flow-continuation/token/check/`
//! `{"token"}`): the token of an email link identifies — and, being unguessable and single-use, verifies — the
//! user. A wrong, used or expired token ends the flow (`FLOW_CONTINUATION_TOKEN_INVALID`).

use crate::flow::FlowKind;
use crate::flow::codes::{ErrorCode, NextStep, Outcome};
use crate::flow::continuation::TOKEN_PURPOSE;
use crate::flow::engine::{Ctx, EngineError};
use crate::flow::session::Subject;

pub(crate) const KINDS: &[FlowKind] = &[FlowKind::PublicSelfService];
pub(crate) const NEXT: Outcome = Outcome::Continue(Some(NextStep::FlowContinuationTokenRequired));

impl Ctx<'_> {
    pub(crate) async fn check_continuation_token(&mut self, token: &str) -> Result<Outcome, EngineError> {
        let hash = self.deps.key.hash_secret(TOKEN_PURPOSE, token.trim());
        let user_id = self.deps.store.consume_continuation_token(&hash, self.flow.id, self.now).await?;
        let user = match user_id {
            Some(id) => self.deps.store.get_user(&id).await?,
            None => None,
        };
        let Some(user) = user else {
            self.audit("link.used", "invalid", serde_json::json!({}));
            return Ok(self.terminate_with(ErrorCode::FlowContinuationTokenInvalid));
        };
        self.state.subject = Some(Subject { login: user.username.clone(), user_id: Some(user.id) });
        self.state.verified = true;
        self.identified();
        self.audit("link.used", "ok", serde_json::json!({}));
        // The restrictions hold for a link as for any identification (a user locked since the mail was sent).
        if let Some(code) = self.restriction_violation().await? {
            return Ok(self.terminate_with(code));
        }
        self.advance().await
    }
}
