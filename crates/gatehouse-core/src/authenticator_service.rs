//! Starting an authenticator activation: the same for the user's protected self-service, the admin API and
//! `gatehouse user activate-authenticator`.

use crate::audit::AuditEvent;
use crate::authenticator::{activation_code, activation_uri};
use crate::clock::Millis;
use crate::config::AuthenticatorConfig;
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
    config: &AuthenticatorConfig,
    user: &User,
    now: Millis,
    audit: AuditEvent,
) -> Result<Activation, ActivationError> {
    let code = activation_code(random);
    let uri = activation_uri(&config.public_url, &code);
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
