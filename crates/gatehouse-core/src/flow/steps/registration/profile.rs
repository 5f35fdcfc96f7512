//! The non-interactive steps that shape the account before it is stored: roles, the preferred authentication
//! method, and the unlock that lets the persisting step store it usable.

use crate::config::{ActiveAuthMethodStep, RoleAssignmentStep, UsernameGenerationStep};
use crate::flow::engine::{Ctx, EngineError};
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
    /// first.
    pub(crate) async fn generate_username(&mut self, cfg: &UsernameGenerationStep) -> Result<(), EngineError> {
        for _ in 0..GENERATION_TRIES {
            let name = username::generate(&cfg.generator, self.deps.random)
                .ok_or(EngineError::Inconsistent("username pattern not checked"))?;
            if self.deps.store.find_user_by_login(&name).await?.is_none() {
                let draft = self.draft_mut()?;
                draft.username = Some(crate::user::normalize_login(&name));
                draft.generated_username = true;
                return Ok(());
            }
        }
        Err(EngineError::Inconsistent("the username pattern is exhausted"))
    }
}
