//! Username only (next step `USERNAME_REQUIRED`, `POST …/authentication/username/identify/`): identifies the
//! user for the factor steps that follow. It succeeds for everyone; a name that matches no valid, unlocked
//! user goes on in stealth mode, where no factor can pass — so the answer tells nothing about the account.

use crate::flow::FlowKind;
use crate::flow::codes::Outcome;
use crate::flow::engine::{Ctx, EngineError};
use crate::flow::session::Subject;
use crate::user::normalize_login;

pub(crate) const KINDS: &[FlowKind] = &[FlowKind::Authentication];

impl Ctx<'_> {
    pub(crate) async fn identify_for_login(&mut self, username: &str) -> Result<Outcome, EngineError> {
        let login = normalize_login(username);
        let user = self.deps.store.find_user_by_login(&login).await?;
        let usable = user.filter(|u| u.is_valid_at(self.now) && !u.locked);
        self.state.stealth = usable.is_none();
        self.state.subject = Some(Subject { login, user_id: usable.map(|u| u.id) });
        self.identified();
        let outcome = if self.state.stealth { "stealth" } else { "ok" };
        self.audit("flow.identified", outcome, serde_json::json!({}));
        self.advance().await
    }
}
