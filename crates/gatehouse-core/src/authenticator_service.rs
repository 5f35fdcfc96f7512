//! Starting an authenticator activation: the same for the user's protected self-service, the admin API and
//! `gatehouse user activate-authenticator`.

use crate::audit::AuditEvent;
use crate::authenticator::{activation_code, activation_uri};
use crate::clock::Millis;
use crate::crypto::ServerKey;
use crate::crypto::totp::{TotpError, qr_svg};
use crate::ports::{Effect, Store, StoreError};
use crate::random::Random;
use crate::user::User;

/// Keyed-hash purpose of activation codes.
pub const ACTIVATION_PURPOSE: &str = "authenticator-activation";

#[derive(Debug, Clone, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Activation {
    pub activation_uri: String,
    pub activation_code: String,
    /// The URI as a QR code (SVG).
    pub qr_code: String,
    pub expires_at: Millis,
}

#[derive(Debug, thiserror::Error)]
pub enum ActivationError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Qr(#[from] TotpError),
}

/// Creates a one-time activation for `user`; `audit` is written with it.
pub async fn start_activation(
    store: &dyn Store,
    key: &ServerKey,
    random: &dyn Random,
    config: &crate::config::Config,
    user: &User,
    now: Millis,
    audit: AuditEvent,
) -> Result<Activation, ActivationError> {
    let code = activation_code(random);
    let uri = activation_uri(&config.device_url(), &code);
    let config = &config.authenticator;
    let expires_at = now.saturating_add(i64::try_from(config.activation_timeout_seconds * 1000).unwrap_or(i64::MAX));
    let effect = Effect::CreateActivation {
        code_hash: key.hash_secret(ACTIVATION_PURPOSE, &code),
        user_id: user.id.clone(),
        at: now,
        expires_at,
    };
    store.apply(&[effect, Effect::Audit(audit)]).await?;
    Ok(Activation { qr_code: qr_svg(&uri)?, activation_uri: uri, activation_code: code, expires_at })
}

/// A device's answer to a push request.
pub struct Decision<'a> {
    pub approval_id: &'a str,
    pub device_id: &'a str,
    pub approve: bool,
    pub number: u32,
    pub signature: &'a str,
}

/// What became of a decision.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decided {
    Approved,
    Denied,
    /// Approving with another number than the browser shows denies the request.
    WrongNumber,
}

#[derive(Debug, thiserror::Error)]
pub enum DecideError {
    #[error("no such request for this device")]
    NotFound,
    #[error("bad signature")]
    BadSignature,
    #[error("the request was decided already or expired")]
    NotPending,
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("{0}")]
    Internal(String),
}

/// Records a device's decision. A denial (or a wrong number) counts on the authenticator's failed-attempt
/// counter at once, atomically, whether or not anybody polls — so an attacker who knows the password and never
/// polls gets no more pushes than the limit allows — and past the limit the user is locked.
pub async fn decide(
    store: &dyn Store,
    config: &crate::config::Config,
    random: &dyn Random,
    now: Millis,
    d: &Decision<'_>,
) -> Result<Decided, DecideError> {
    let device = store.get_device(d.device_id).await?.ok_or(DecideError::NotFound)?;
    let approval = store
        .get_approval(d.approval_id)
        .await?
        .filter(|a| a.user_id == device.user_id)
        .ok_or(DecideError::NotFound)?;
    let word = if d.approve { "approve" } else { "deny" };
    let message = crate::authenticator::approval_message(&approval.id, &approval.nonce, word, d.number);
    if !crate::authenticator::verify(&device.public_key, &message, d.signature) {
        return Err(DecideError::BadSignature);
    }
    if approval.status != crate::ports::ApprovalStatus::Pending || now >= approval.expires_at {
        return Err(DecideError::NotPending);
    }
    let matched = !d.approve || d.number == approval.number;
    let granted = d.approve && matched;
    if !store.decide_approval(&approval.id, &device.id, granted, now).await? {
        return Err(DecideError::NotPending);
    }
    let decided = match (granted, matched) {
        (true, _) => Decided::Approved,
        (false, true) => Decided::Denied,
        (false, false) => Decided::WrongNumber,
    };
    let user = store.get_user(&device.user_id).await?;
    let event = |event: &str, outcome: &str, details: serde_json::Value| {
        Effect::Audit(AuditEvent {
            id: crate::random::random_id(random),
            at: now,
            event: event.to_owned(),
            actor: format!("device:{}", device.id),
            user_id: Some(device.user_id.clone()),
            username: user.as_ref().map(|u| u.username.clone()),
            flow_id: None,
            session_id: None,
            ip: None,
            outcome: outcome.to_owned(),
            details,
        })
    };
    let outcome = match decided {
        Decided::Approved => "approved",
        Decided::Denied => "denied",
        Decided::WrongNumber => "wrong_number",
    };
    let mut effects =
        vec![event("approval.decided", outcome, serde_json::json!({ "approval": approval.id, "kind": approval.kind }))];
    if decided != Decided::Approved {
        // A denial counts at once, where the flow that asked is: a public flow's on its own counter in throttle
        // mode.
        let public = approval.kind != "login";
        let counter = config.lockout.counter(&config.authenticator.method_id, public);
        let attempt = crate::flow::factor::Attempt { user_id: &device.user_id, counter: &counter, now };
        let counted = crate::flow::factor::counted_check(store, attempt, &mut effects, async { Ok(false) })
            .await
            .map_err(|e| DecideError::Internal(e.to_string()))?;
        if let crate::flow::factor::Counted::Wrong(crate::ports::Failure { count, locked: true, .. }) = counted
            && let crate::config::OverLimit::Lock { reason } = &counter.over_limit
        {
            effects.push(event("user.locked", "ok", serde_json::json!({ "reason": reason, "failed_attempts": count })));
        }
    }
    store.apply(&effects).await?;
    Ok(decided)
}
