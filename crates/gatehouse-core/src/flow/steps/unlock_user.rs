//! Unlock User (non-interactive): unlocks the verified user within the maximum number of unlocks, atomically
//! in the store. Nothing tells how many unlocks remain.

use super::Enter;
use crate::config::{Restrictions, SelfUnlockRestrictions, UnlockUserStep};
use crate::flow::FlowKind;
use crate::flow::codes::ErrorCode;
use crate::flow::engine::{Ctx, EngineError};
use crate::ports::SelfUnlock;

pub(crate) const KINDS: &[FlowKind] = &[FlowKind::PublicSelfService, FlowKind::SelfRegistration];

impl Ctx<'_> {
    pub(crate) async fn unlock_user(&mut self, cfg: &UnlockUserStep) -> Result<Enter, EngineError> {
        let Some(user_id) = self.user_id().filter(|_| self.state.verified) else {
            return Err(EngineError::Inconsistent("unlock-user reached without a verified user"));
        };
        let allowed = match self.flow.restrictions {
            Some(Restrictions::SelfUnlock(r)) => r.allowed_lock_reasons.clone(),
            _ => SelfUnlockRestrictions::default().allowed_lock_reasons,
        };
        let max = self.deps.config.public_self_service.max_number_of_unlocks;
        let result = self.deps.store.self_unlock(&user_id, &allowed, max, &cfg.counters_to_reset, self.now).await;
        self.forget_user();
        let result = result?;
        let (outcome, code) = match result {
            SelfUnlock::Unlocked => ("ok", None),
            SelfUnlock::NotLocked => ("not_locked", None),
            SelfUnlock::NotAllowed => ("reason_not_allowed", Some(ErrorCode::UserLocked)),
            SelfUnlock::LimitReached => ("limit_reached", Some(ErrorCode::TooManyUnlocks)),
        };
        self.audit("user.self_unlock", outcome, serde_json::json!({}));
        Ok(match code {
            Some(code) => Enter::Wait(self.terminate_with(code)),
            None => Enter::Done,
        })
    }
}
