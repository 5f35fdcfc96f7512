//! Send Email Link (non-interactive): mails the identified user a single-use link into the target flow (see
//! [`crate::flow::continuation`]). A user in stealth mode, or without an address, gets nothing — the answer is
//! the same.

use super::Enter;
use crate::config::SendEmailLinkStep;
use crate::flow::FlowKind;
use crate::flow::continuation::{LinkMail, link_effects};
use crate::flow::engine::{Ctx, EngineError};

pub(crate) const KINDS: &[FlowKind] = &[FlowKind::PublicSelfService];

impl Ctx<'_> {
    pub(crate) async fn send_email_link(&mut self, cfg: &SendEmailLinkStep) -> Result<Enter, EngineError> {
        let user = self.load_user().await?;
        let target = user.and_then(|u| u.context_item(&cfg.email_item).map(str::to_owned).map(|to| (u, to)));
        let Some((user, to)) = target else {
            self.audit("link.sent", "stealth", serde_json::json!({ "target_flow": cfg.target_flow }));
            return Ok(Enter::Done);
        };
        let mail = LinkMail {
            config: self.deps.config,
            key: self.deps.key,
            random: self.deps.random,
            templates: self.deps.templates,
            now: self.now,
        };
        let lang = self.language_of(&user);
        let effects = link_effects(&mail, &user, &to, &cfg.target_flow, &cfg.template, cfg.validity_seconds, &lang)?;
        self.effects.extend(effects);
        self.audit("link.sent", "ok", serde_json::json!({ "target_flow": cfg.target_flow }));
        Ok(Enter::Done)
    }
}
