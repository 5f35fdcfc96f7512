//! Required Role (non-interactive): the user must have every configured role, else the flow ends with
//! `USER_ROLE_MISSING` (403).

use super::Enter;
use crate::config::RequiredRoleStep;
use crate::flow::FlowKind;
use crate::flow::codes::ErrorCode;
use crate::flow::engine::{Ctx, EngineError};

pub(crate) const KINDS: &[FlowKind] = &[FlowKind::Authentication];

impl Ctx<'_> {
    pub(crate) async fn required_role(&mut self, cfg: &RequiredRoleStep) -> Result<Enter, EngineError> {
        if self.has_roles(&cfg.roles).await? {
            return Ok(Enter::Done);
        }
        self.audit("flow.role_missing", "failed", serde_json::json!({ "roles": cfg.roles }));
        Ok(Enter::Wait(self.terminate_with(ErrorCode::UserRoleMissing)))
    }

    /// Whether the flow's user (not in stealth mode) has every one of `roles`.
    pub(crate) async fn has_roles(&mut self, roles: &[String]) -> Result<bool, EngineError> {
        if roles.is_empty() {
            return Ok(true);
        }
        Ok(self.load_user().await?.is_some_and(|u| roles.iter().all(|r| u.roles.contains(r))))
    }
}
