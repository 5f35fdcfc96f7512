//! The non-interactive steps that shape the account before it is stored: roles, the preferred authentication
//! method, and the unlock that lets the persisting step store it usable.

use crate::config::{ActiveAuthMethodStep, RoleAssignmentStep, UsernameGenerationStep};
use crate::flow::codes::ErrorCode;
use crate::flow::engine::{Ctx, EngineError};
use crate::flow::steps::Enter;
use crate::registration::username;

/// Generated names tried before giving up (each is checked against the store; collisions are rare).
const GENERATION_TRIES: usize = 8;

impl Ctx<'_> {
    pub(crate) fn assign_roles(&mut self, cfg: &RoleAssignmentStep) -> Result<(), EngineError> {
        let draft = self.draft_mut()?;
        for role in &cfg.roles {
            if !draft.roles.contains(role) {
                draft.roles.push(role.clone());
            }
        }
        Ok(())
    }

    pub(crate) fn set_auth_method(&mut self, cfg: &ActiveAuthMethodStep) -> Result<(), EngineError> {
        self.draft_mut()?.auth_method = Some(cfg.method.clone());
        Ok(())
    }

    pub(crate) fn unlock_draft(&mut self) -> Result<(), EngineError> {
        self.draft_mut()?.unlocked = true;
        Ok(())
    }

    /// Draws a username no account has; the persisting step draws again should another registration take it
    /// first. A pattern so small that every draw is taken ends the flow (`config check` warns about small ones).
    pub(crate) async fn generate_username(&mut self, cfg: &UsernameGenerationStep) -> Result<Enter, EngineError> {
        for _ in 0..GENERATION_TRIES {
            let name = username::generate(&cfg.generator, self.deps.random)
                .ok_or(EngineError::Inconsistent("username pattern not checked"))?;
            if self.deps.store.find_user_by_login(&name).await?.is_none() {
                let draft = self.draft_mut()?;
                draft.username = Some(crate::user::normalize_login(&name));
                draft.generated_username = true;
                return Ok(Enter::Done);
            }
        }
        self.audit("registration.conflict", "username_space_exhausted", serde_json::json!({}));
        Ok(Enter::Wait(self.terminate_with(ErrorCode::RegistrationConflict)))
    }
}
