//! Rate limits on the calls that try an answer or name an account, counted in the database (one statement
//! per key) so they hold across nodes. Accounts are keyed by a keyed hash of the name as entered, so a known
//! and an unknown name are limited alike.

use gatehouse_core::flow::Action;
use gatehouse_core::user::normalize_login;

use crate::errors::ApiError;
use crate::state::AppState;

/// Whether `action` tries an answer or names an account.
pub(crate) fn is_limited(action: &Action) -> bool {
    !matches!(
        action,
        Action::RetrieveOptions
            | Action::SelectOption { .. }
            | Action::PollApp
            | Action::OfflineChallenge
            | Action::Acknowledge
            | Action::SetPassword { .. }
            | Action::PollActivation
            | Action::NewCaptcha
            | Action::Describe
    )
}

async fn hit(
    state: &AppState,
    scope: &'static str,
    key: &str,
    limit: u32,
    window_seconds: u64,
) -> Result<(), ApiError> {
    let window_ms = i64::try_from(window_seconds.saturating_mul(1000)).unwrap_or(i64::MAX);
    match state.store.hit_rate_limit(key, window_ms, limit, state.clock.now_ms()).await? {
        None => Ok(()),
        Some(ms) => {
            metrics::counter!("gatehouse_rate_limit_rejections_total", "scope" => scope).increment(1);
            Err(ApiError::RateLimited { retry_after_secs: u64::try_from(ms).unwrap_or(1).div_ceil(1000) })
        }
    }
}

/// One more such call from `ip`.
pub(crate) async fn client(state: &AppState, ip: Option<&str>) -> Result<(), ApiError> {
    let cfg = &state.config.rate_limits;
    match ip.filter(|_| cfg.enabled) {
        Some(ip) => hit(state, "ip", &format!("ip:{ip}"), cfg.per_ip_requests, cfg.per_ip_window_seconds).await,
        None => Ok(()),
    }
}

/// One more such call about the account named `login` (as entered).
pub(crate) async fn account(state: &AppState, login: &str) -> Result<(), ApiError> {
    let cfg = &state.config.rate_limits;
    if !cfg.enabled {
        return Ok(());
    }
    let tag = state.key.hash_secret("rate-limit-account", &normalize_login(login));
    let key = format!("account:{}", &tag[..32]);
    hit(state, "account", &key, cfg.per_account_requests, cfg.per_account_window_seconds).await
}
