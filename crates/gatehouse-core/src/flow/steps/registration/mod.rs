//! The steps of self-registration flows. What a registration collects lives in the flow state's draft
//! ([`Draft`]) until a persisting step stores the account.

mod activation;
mod channel;
mod data;
mod password;
mod persisting;
mod profile;

use std::collections::BTreeMap;

use crate::config::{ItemRole, RegistrationFlow};
use crate::flow::FlowKind;
use crate::flow::engine::{Ctx, EngineError};
use crate::flow::session::Draft;
use crate::outbox;
use crate::ports::Effect;

pub(crate) const KINDS: &[FlowKind] = &[FlowKind::SelfRegistration];

impl Ctx<'_> {
    /// The registration flow's settings.
    pub(crate) fn registration_flow(&self) -> Result<&RegistrationFlow, EngineError> {
        self.flow.registration.ok_or(EngineError::Inconsistent("a registration step outside a registration flow"))
    }

    pub(crate) fn draft(&self) -> Result<&Draft, EngineError> {
        self.state.registration.as_ref().ok_or(EngineError::Inconsistent("a registration flow without its draft"))
    }

    pub(crate) fn draft_mut(&mut self) -> Result<&mut Draft, EngineError> {
        self.state.registration.as_mut().ok_or(EngineError::Inconsistent("a registration flow without its draft"))
    }

    /// The role of item `name` in this flow (context data unless a data step says otherwise).
    pub(crate) fn item_role(&self, name: &str) -> ItemRole {
        self.flow
            .registration
            .and_then(|f| f.items().find(|i| i.name == name).map(|i| i.role))
            .unwrap_or(ItemRole::Context)
    }

    /// Whether `value` of item `name` already belongs to an account: as a login name (username, alias) or as an
    /// additional unique item. One store call either way.
    pub(crate) async fn item_taken(&self, name: &str, value: &str) -> Result<bool, EngineError> {
        let unique = self.flow.registration.is_some_and(|f| f.additional_unique_items.iter().any(|i| i == name));
        Ok(match (self.item_role(name), unique) {
            (ItemRole::Username | ItemRole::Alias, _) => self.deps.store.find_user_by_login(value).await?.is_some(),
            (ItemRole::Context, true) => self.deps.store.unique_item_owner(name, value).await?.is_some(),
            (ItemRole::Context, false) => false,
        })
    }

    /// The language of messages to the visitor: their `language` item if supported, else the default.
    fn registration_language(&self) -> String {
        let default = &self.deps.config.messaging.default_language;
        self.state
            .registration
            .as_ref()
            .and_then(|d| d.items.get("language"))
            .filter(|l| crate::messages::is_supported_language(l))
            .unwrap_or(default)
            .clone()
    }

    /// Renders `template` and queues it to an address the visitor entered.
    pub(crate) fn queue_to_visitor(
        &mut self,
        sms: bool,
        to: &str,
        template: &str,
        vars: &BTreeMap<&str, String>,
    ) -> Result<(), EngineError> {
        let lang = self.registration_language();
        let (key, random) = (self.deps.key, self.deps.random);
        let message = if sms {
            let text = self.deps.templates.render_text(template, &lang, vars)?;
            outbox::seal_sms(key, random, self.now, to, template, &text)
        } else {
            let rendered = self.deps.templates.render_mail(template, &lang, vars)?;
            outbox::seal_email(key, random, self.now, to, template, rendered)
        };
        self.effects.push(Effect::Enqueue(message));
        Ok(())
    }
}
