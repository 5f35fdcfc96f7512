//! One module per step kind; each adds its handlers to the engine's context.

mod app_approval;
mod email_notification;
mod email_verification;
mod set_password;
mod unlock_user;
mod user_identification;

use std::collections::BTreeMap;

use super::engine::{Ctx, EngineError};
use crate::messages;
use crate::outbox;
use crate::ports::Effect;
use crate::user::User;

impl Ctx<'_> {
    /// The language of messages for `user`: its `language` item if supported, else the configured default.
    fn language_of(&self, user: &User) -> String {
        user.context_item("language")
            .filter(|l| messages::is_supported_language(l))
            .map_or_else(|| self.deps.config.messaging.default_language.clone(), str::to_owned)
    }

    /// Renders `template` for `user` and queues it to `to` with this call's other effects.
    fn queue_mail(
        &mut self,
        user: &User,
        to: &str,
        template: &str,
        mut vars: BTreeMap<&str, String>,
    ) -> Result<(), EngineError> {
        vars.insert("username", user.username.clone());
        let rendered = messages::render(template, &self.language_of(user), &vars)?;
        let message = outbox::seal_email(self.deps.key, self.deps.random, self.now, to, template, rendered);
        self.effects.push(Effect::Enqueue(message));
        Ok(())
    }
}
