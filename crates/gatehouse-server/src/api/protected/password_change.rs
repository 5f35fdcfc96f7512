//! `POST /rest/protected/self-service/password/change/` — `{"oldPassword": "…", "newPassword": "…"}`.
//! A wrong old password counts (method `OLD_PASSWORD`); past the maximum the user is locked with
//! `LockReason.MaxWrongOldPassword` and every session ends.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use gatehouse_core::crypto::{HashError, PasswordHashing as _};
use gatehouse_core::flow::factor::{Attempt, Counted, counted_check};
use gatehouse_core::password_policy::{self, detail};
use gatehouse_core::ports::Effect;
use gatehouse_core::user::lock_reason;
use serde::Deserialize;

use super::Authenticated;
use crate::documents;
use crate::errors::ApiError;
use crate::extract::JsonBody;
use crate::state::AppState;

/// The counter of wrong old passwords.
const METHOD: &str = "OLD_PASSWORD";

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ChangeRequest {
    pub old_password: String,
    pub new_password: String,
}

fn policy_error(details: &[&'static str]) -> ApiError {
    ApiError::Rejected {
        status: StatusCode::BAD_REQUEST,
        code: "PASSWORD_POLICY_VIOLATED",
        title: details.join(", "),
        pointer: Some("/newPassword"),
    }
}

#[tracing::instrument(name = "protected.password_change", skip_all)]
pub async fn handler(
    State(state): State<AppState>,
    auth: Authenticated,
    JsonBody(body): JsonBody<ChangeRequest>,
) -> Result<Json<serde_json::Value>, ApiError> {
    if body.old_password.len() > 4096 {
        return Err(ApiError::InvalidRequest {
            title: "oldPassword is too long".into(),
            pointer: Some("/oldPassword".into()),
        });
    }
    let user = &auth.user;
    let now = state.clock.now_ms();
    let max = state.config.lockout.max_for(METHOD);
    let mut effects = Vec::new();
    let stored = user.password_hash.clone();
    let hasher = &state.hasher;
    let old = body.old_password.clone();
    let check = async move {
        match stored {
            Some(h) => match hasher.verify(old, h).await {
                Ok(v) => Ok(v.matches),
                Err(HashError::UnsupportedHash(_)) => Ok(false),
                Err(e) => Err(e.into()),
            },
            None => Ok(false),
        }
    };
    let attempt =
        Attempt { user_id: &user.id, method_id: METHOD, max, lock_reason: lock_reason::MAX_WRONG_OLD_PASSWORD, now };
    let counted = counted_check(state.store.as_ref(), attempt, &mut effects, check).await?;
    match counted {
        Counted::Right => {}
        Counted::Exhausted | Counted::Wrong { locked: true, .. } => {
            let audit = super::audit(
                &state,
                &auth,
                "user.locked",
                serde_json::json!({ "reason": lock_reason::MAX_WRONG_OLD_PASSWORD }),
            );
            effects.push(Effect::EndAuthSession { id: auth.session.id.clone(), at: now });
            effects.push(Effect::Audit(audit));
            state.store.apply(&effects).await?;
            return Err(ApiError::Rejected {
                status: StatusCode::FORBIDDEN,
                code: "USER_LOCKED",
                title: "the account is locked".into(),
                pointer: None,
            });
        }
        Counted::Wrong { .. } => {
            let audit = super::audit(
                &state,
                &auth,
                "password.change_failed",
                serde_json::json!({ "reason": "wrong_old_password" }),
            );
            effects.push(Effect::Audit(audit));
            state.store.apply(&effects).await?;
            return Err(ApiError::Rejected {
                status: StatusCode::BAD_REQUEST,
                code: "OLD_PASSWORD_WRONG",
                title: "the current password is wrong".into(),
                pointer: Some("/oldPassword"),
            });
        }
    }
    let mut inputs: Vec<&str> = vec![user.username.as_str()];
    inputs.extend(user.context.values().map(String::as_str));
    let mut violations =
        password_policy::check(&state.config.password_policy, &body.new_password, &user.username, &inputs);
    if violations.is_empty()
        && state.config.password_policy.reject_same_as_old
        && body.new_password == body.old_password
    {
        violations.push(detail::SAME_AS_OLD);
    }
    if !violations.is_empty() {
        // The old password was right: give that attempt back.
        state.store.apply(&effects).await?;
        return Err(policy_error(&violations));
    }
    let password_hash = state.hasher.hash(body.new_password).await.map_err(|e| match e {
        HashError::Overloaded => ApiError::Overloaded,
        other => ApiError::Internal(other.to_string()),
    })?;
    let password_method = state.config.authentication.password_method_id.clone();
    effects.push(Effect::SetPassword { user_id: user.id.clone(), password_hash, at: now });
    effects.push(Effect::ResetCounters { user_id: user.id.clone(), method_ids: vec![password_method, METHOD.into()] });
    effects.push(Effect::Audit(super::audit(&state, &auth, "password.changed", serde_json::json!({ "by": "user" }))));
    state.store.apply(&effects).await?;
    Ok(Json(documents::resource(now, "my.password", &user.id, serde_json::json!({ "changed": true }))))
}
