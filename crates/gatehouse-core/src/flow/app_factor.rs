//! What the authenticator factor does the same in login and in self-service flows: create a push request,
//! make an offline challenge, check an offline code against the user's devices.

use subtle::ConstantTimeEq;

use crate::authenticator::{new_number, number_choices, offline_code};
use crate::clock::{Millis, format_timestamp};
use crate::flow::engine::{EngineError, FlowDeps};
use crate::ports::{Approval, ApprovalStatus};
use crate::random::{random_id, random_token};

/// Sealing context of devices' offline keys.
pub const OFFLINE_KEY_CONTEXT: &str = "gatehouse/device-offline-key/v1";

/// A pending push request for `user_id` about `kind` (`login`, `unlock`, `password-reset`).
pub(crate) fn new_approval(deps: &FlowDeps<'_>, user_id: &str, kind: &str, ip: Option<&str>, now: Millis) -> Approval {
    let number = new_number(deps.random);
    let timeout = i64::try_from(deps.config.authenticator.approval_timeout_seconds * 1000).unwrap_or(i64::MAX);
    Approval {
        id: random_id(deps.random),
        user_id: user_id.to_owned(),
        kind: kind.to_owned(),
        context: serde_json::json!({ "ip": ip, "time": format_timestamp(now) }),
        number,
        choices: number_choices(deps.random, number),
        nonce: random_token(deps.random),
        status: ApprovalStatus::Pending,
        device_id: None,
        created_at: now,
        expires_at: now.saturating_add(timeout),
        decided_at: None,
    }
}

/// The text of an offline challenge (shown as a QR code): `gatehouse-offline:1:<nonce>:<username>:<kind>:<time>`.
pub(crate) fn offline_challenge_text(deps: &FlowDeps<'_>, username: &str, kind: &str, now: Millis) -> String {
    format!("gatehouse-offline:1:{}:{username}:{kind}:{}", random_token(deps.random), format_timestamp(now))
}

/// Whether `answer` is the code one of the user's devices derives from `challenge` (constant-time per device).
pub(crate) async fn offline_code_matches(
    deps: &FlowDeps<'_>,
    user_id: &str,
    challenge: &str,
    answer: &str,
) -> Result<bool, EngineError> {
    let answer: String = answer.chars().filter(|c| !c.is_whitespace()).collect();
    let mut right = false;
    for device in deps.store.list_devices(user_id).await? {
        if let Ok(key) = deps.key.open(OFFLINE_KEY_CONTEXT, &device.sealed_offline) {
            right |= bool::from(offline_code(&key, challenge).as_bytes().ct_eq(answer.as_bytes()));
        }
    }
    Ok(right)
}
