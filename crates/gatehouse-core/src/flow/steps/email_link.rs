//! Send Email Link (non-interactive): mails the identified user a single-use link into the target flow (see
//! [`crate::flow::continuation`]). A user in stealth mode, or without an address, gets nothing — the answer is
//! the same, and so is the work (a token row inserted for no one, a job with nothing to send).

use super::Enter;
use crate::config::SendEmailLinkStep;
use crate::flow::FlowKind;
use crate::flow::continuation::{LinkMail, Recipient, link_effects};
use crate::flow::engine::{Ctx, EngineError};

pub(crate) const KINDS: &[FlowKind] = &[FlowKind::PublicSelfService, FlowKind::SelfRegistration];

impl Ctx<'_> {
    pub(crate) async fn send_email_link(&mut self, cfg: &SendEmailLinkStep) -> Result<Enter, EngineError> {
        let user = self.load_user().await?;
        let to = user.as_ref().and_then(|u| u.context_item(&cfg.email_item));
        let login = self.state.subject.as_ref().map(|s| s.login.clone()).unwrap_or_default();
        let recipient = Recipient {
            user_id: to.and(user.as_ref()).map_or("", |u| u.id.as_str()),
            username: to.and(user.as_ref()).map_or(login.as_str(), |u| u.username.as_str()),
            to,
        };
        let mail = LinkMail {
            config: self.deps.config,
            key: self.deps.key,
            random: self.deps.random,
            templates: self.deps.templates,
            now: self.now,
        };
        let lang = match (&user, to) {
            (Some(u), Some(_)) => self.language_of(u),
            _ => self.deps.config.messaging.default_language.clone(),
        };
        let effects = link_effects(&mail, &recipient, &cfg.target_flow, &cfg.template, cfg.validity_seconds, &lang)?;
        let outcome = if to.is_some() { "ok" } else { "stealth" };
        self.effects.extend(effects);
        self.audit("link.sent", outcome, serde_json::json!({ "target_flow": cfg.target_flow }));
        Ok(Enter::Done)
    }
}
