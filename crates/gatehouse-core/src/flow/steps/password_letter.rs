//! Password Letter Order (non-interactive): a fresh one-time password becomes the user's password, and a
//! letter carrying it is queued for the letter outbox (a PDF a print shop picks up). By default the flow
//! completes here with `attributes.letterOrdered`.

use std::collections::BTreeMap;

use super::Enter;
use crate::config::PasswordLetterStep;
use crate::flow::FlowKind;
use crate::flow::codes::ErrorCode;
use crate::flow::engine::{Ctx, EngineError};
use crate::outbox;
use crate::ports::Effect;
use crate::random::random_code;

pub(crate) const KINDS: &[FlowKind] = &[FlowKind::PublicSelfService];

/// Letters and digits that cannot be mistaken for each other on paper.
const LETTER_ALPHABET: &str = "ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnpqrstuvwxyz23456789";

impl Ctx<'_> {
    pub(crate) async fn order_letter(&mut self, cfg: &PasswordLetterStep) -> Result<Enter, EngineError> {
        let user = match (self.state.verified, self.load_user().await?) {
            (true, Some(user)) => user,
            _ => return Err(EngineError::Inconsistent("password-letter-order reached without a verified user")),
        };
        let Some(address) = user.context_item(&cfg.address_item) else {
            self.audit("letter.refused", "no_address", serde_json::json!({}));
            return Ok(Enter::Wait(self.terminate_with(ErrorCode::PostalAddressMissing)));
        };
        let name = user.context_item(&cfg.name_item).unwrap_or(&user.username).to_owned();
        let lines: Vec<&str> = address.split(['\n', ';']).map(str::trim).filter(|l| !l.is_empty()).collect();
        let recipient = std::iter::once(name.as_str()).chain(lines).collect::<Vec<_>>().join("\n");
        let alphabet: Vec<char> = LETTER_ALPHABET.chars().collect();
        let password = random_code(self.deps.random, &alphabet, cfg.password_length);
        let vars = BTreeMap::from([
            ("username", user.username.clone()),
            ("name", name),
            ("password", password.clone()),
            ("date", crate::clock::format_timestamp(self.now).chars().take(10).collect()),
        ]);
        let text = self.deps.templates.render_text(&cfg.template, &self.language_of(&user), &vars)?;
        let password_hash = self.deps.hasher.hash(password).await?;
        self.effects.push(Effect::SetPassword { user_id: user.id.clone(), password_hash, at: self.now });
        self.effects.push(Effect::EndUserSessions { user_id: user.id.clone(), except: None, at: self.now });
        self.effects.push(Effect::ResetCounters {
            user_id: user.id.clone(),
            method_ids: vec![self.deps.config.authentication.password_method_id.clone()],
        });
        let letter = outbox::seal_letter(self.deps.key, self.deps.random, self.now, &recipient, &cfg.template, &text);
        self.effects.push(Effect::Enqueue(letter));
        self.audit("letter.ordered", "ok", serde_json::json!({ "template": cfg.template }));
        if !cfg.ends_flow {
            return Ok(Enter::Done);
        }
        self.attributes.insert("letterOrdered".into(), serde_json::json!(true));
        Ok(Enter::End)
    }
}
