//! What completing an authentication flow means: the user is authenticated. The counters of the factors used
//! reset, the temporary lock and the unlock count clear, and a new session (with a new cookie) is created —
//! unless the application needs roles the user lacks.

use crate::flow::codes::{ErrorCode, Outcome};
use crate::flow::engine::{Ctx, EngineError};
use crate::flow::session::SessionStatus;
use crate::ports::{Effect, NewAuthSession};
use crate::random::{random_id, random_token};

/// The keyed-hash purpose of authenticated session cookies.
pub const SESSION_TOKEN_PURPOSE: &str = "auth-session";

pub(crate) async fn authenticated(ctx: &mut Ctx<'_>) -> Result<Outcome, EngineError> {
    // Every step may have been skipped for a user in stealth mode; only a real, verified user gets a session.
    let Some(user_id) = ctx.user_id().filter(|_| ctx.state.verified) else {
        return Ok(ctx.terminate_with(ErrorCode::AuthenticationFailed));
    };
    // The user may have been locked or invalidated while the second factor was asked: checked again here (a call
    // that also checked the password checks the user as that check read it, see `Ctx::load_user`).
    match ctx.load_user().await? {
        None => return Ok(ctx.terminate_with(ErrorCode::AuthenticationFailed)),
        Some(user) if user.locked => return Ok(ctx.terminate_with(ErrorCode::UserLocked)),
        Some(user) if !user.is_valid_at(ctx.now) => return Ok(ctx.terminate_with(ErrorCode::UserInvalid)),
        Some(_) => {}
    }
    let app = ctx.state.application.as_deref().and_then(|id| ctx.deps.config.authentication.application(id));
    let required = app.map(|a| a.required_roles.clone()).unwrap_or_default();
    if !ctx.has_roles(&required).await? {
        ctx.audit("flow.role_missing", "failed", serde_json::json!({ "roles": required }));
        return Ok(ctx.terminate_with(ErrorCode::UserRoleMissing));
    }
    ctx.status = SessionStatus::Completed;
    let passed = ctx.state.methods_passed.clone();
    // Resetting a counter deletes it, so giving back the reservation a check of this call took on it would be a
    // statement for nothing in the same write.
    ctx.effects.retain(
        |e| !matches!(e, Effect::ReleaseAttempt { user_id: u, method_id: m } if *u == user_id && passed.contains(m)),
    );
    ctx.effects.push(Effect::ResetCounters { user_id: user_id.clone(), method_ids: passed.clone() });
    ctx.effects.push(Effect::SetTemporaryLock { user_id: user_id.clone(), until: None });
    ctx.effects.push(Effect::ResetUnlockCount { user_id: user_id.clone() });
    let token = random_token(ctx.deps.random);
    let lifetime =
        i64::try_from(ctx.deps.config.authentication.session.max_lifetime_seconds * 1000).unwrap_or(i64::MAX);
    ctx.effects.push(Effect::CreateAuthSession(NewAuthSession {
        id: random_id(ctx.deps.random),
        token_hash: ctx.deps.key.hash_secret(SESSION_TOKEN_PURPOSE, &token),
        user_id,
        factors: passed.clone(),
        created_at: ctx.now,
        expires_at: ctx.now.saturating_add(lifetime),
    }));
    ctx.session_token = Some(token);
    ctx.audit("login.succeeded", "ok", serde_json::json!({ "factors": passed, "application": ctx.state.application }));
    Ok(Outcome::Continue(None))
}
