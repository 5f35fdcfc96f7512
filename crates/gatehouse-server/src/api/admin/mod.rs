//! The admin API (`/rest/admin/…`) for helpdesks and provisioning: bearer tokens made with
//! `gatehouse admin token create NAME`, stored as keyed hashes. It runs the same service as `gatehouse user …`,
//! and every action is an audit event naming the token.

mod applications;
mod audit;
mod users;

use axum::extract::FromRequestParts;
use axum::http::Method;
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;
use axum::routing::{delete, get, post};
use gatehouse_core::admin::{AdminError, UserAdmin};
use gatehouse_core::clock::format_timestamp;
use gatehouse_core::user::User;

use super::routes::{Answer, Auth, Body, Doc, Query, Routes};
use crate::errors::ApiError;
use crate::extract::NoInput;
use crate::state::AppState;

/// Keyed-hash purpose of admin tokens.
pub const ADMIN_TOKEN_PURPOSE: &str = "admin-token";

pub fn routes() -> Routes {
    let doc = |summary, answer| Doc::new(summary, Auth::AdminToken, answer);
    let none = Body::of::<NoInput>();
    Routes::new()
        .at(
            Method::GET,
            "/admin/applications",
            get(applications::list),
            doc("The third-party applications of the v1 API", Answer::Document("applications")),
        )
        .at(
            Method::POST,
            "/admin/applications",
            post(applications::create),
            doc(
                "Register an application (the answer holds its API key, shown once)",
                Answer::Document("the application"),
            )
            .body(Body::of::<applications::CreateRequest>()),
        )
        .at(
            Method::POST,
            "/admin/applications/{name}/rotate",
            post(applications::rotate),
            doc("A new API key for an application (the old one stops at once)", Answer::Document("the new key"))
                .body(none),
        )
        .at(
            Method::DELETE,
            "/admin/applications/{name}",
            delete(applications::revoke),
            doc("Revoke an application: its key opens nothing any more", Answer::NoContent),
        )
        .at(
            Method::GET,
            "/admin/audit",
            get(audit::list),
            doc("The audit trail, newest first, paged", Answer::Document("events"))
                .query(Query::of::<audit::AuditParams>()),
        )
        .at(
            Method::GET,
            "/admin/users",
            get(users::list),
            doc("Users, optionally those matching a text", Answer::Document("users"))
                .query(Query::of::<users::ListQuery>()),
        )
        .at(Method::GET, "/admin/users/{username}", get(users::show), doc("One user", Answer::Document("the user")))
        .at(Method::DELETE, "/admin/users/{username}", delete(users::remove), doc("Delete a user", Answer::NoContent))
        .at(
            Method::POST,
            "/admin/users/{username}/lock",
            post(users::lock),
            doc("Lock a user", Answer::Document("the user")).body(Body::of::<users::LockRequest>()),
        )
        .at(
            Method::POST,
            "/admin/users/{username}/unlock",
            post(users::unlock),
            doc("Unlock a user and reset every counter", Answer::Document("the user")).body(none),
        )
        .at(
            Method::POST,
            "/admin/users/{username}/reset-link",
            post(users::reset_link),
            doc("Mail the user a single-use reset link", Answer::Accepted("the link's flow and validity"))
                .body(Body::of::<users::ResetLinkRequest>()),
        )
        .at(
            Method::DELETE,
            "/admin/users/{username}/counters/{method_id}",
            delete(users::reset_counter),
            doc("Reset one failed-attempt counter", Answer::Document("the user")),
        )
        .at(
            Method::POST,
            "/admin/users/{username}/app-2fa/activation",
            post(users::activation),
            doc("Start an authenticator activation for the user", Answer::Document("the activation code and URI"))
                .body(none),
        )
        .at(
            Method::GET,
            "/admin/users/{username}/app-2fa/devices",
            get(users::devices),
            doc("The user's devices", Answer::Document("devices")),
        )
        .at(
            Method::DELETE,
            "/admin/users/{username}/app-2fa/devices/{id}",
            delete(users::remove_device),
            doc("Remove a device", Answer::NoContent),
        )
        .at(
            Method::POST,
            "/admin/users/{username}/app-2fa/devices/{id}/rename",
            post(users::rename_device),
            doc("Rename a device", Answer::Document("the device")).body(Body::of::<users::RenameRequest>()),
        )
}

/// A request authenticated by an admin token.
pub struct AdminToken {
    pub name: String,
}

impl FromRequestParts<AppState> for AdminToken {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let header =
            parts.headers.get(AUTHORIZATION).and_then(|v| v.to_str().ok()).ok_or(ApiError::NotAuthenticated)?;
        let token = header
            .strip_prefix("Bearer ")
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .ok_or(ApiError::NotAuthenticated)?;
        let hash = state.key.hash_secret(ADMIN_TOKEN_PURPOSE, token);
        let name = state.store.use_admin_token(&hash, state.clock.now_ms()).await?.ok_or(ApiError::NotAuthenticated)?;
        Ok(Self { name })
    }
}

impl AdminToken {
    /// Who acts, as the audit log names it.
    pub fn actor(&self) -> String {
        format!("admin:token:{}", self.name)
    }

    pub fn service<'a>(&self, state: &'a AppState) -> UserAdmin<'a> {
        UserAdmin {
            store: state.store.as_ref(),
            email_as_alias: state.config.users.email_as_alias,
            hasher: &state.hasher,
            policy: &state.config.password_policy,
            clock: state.clock.as_ref(),
            random: state.random.as_ref(),
            actor: self.actor(),
        }
    }
}

impl From<AdminError> for ApiError {
    fn from(e: AdminError) -> Self {
        match e {
            AdminError::NotFound(name) => ApiError::Rejected {
                status: axum::http::StatusCode::NOT_FOUND,
                code: gatehouse_core::flow::ErrorCode::UserNotFound,
                title: format!("no user `{name}`"),
                pointer: None,
            },
            AdminError::Invalid { field, message } => {
                ApiError::InvalidRequest { title: message, pointer: Some(format!("/{field}")) }
            }
            AdminError::Policy(v) => ApiError::Rejected {
                status: axum::http::StatusCode::BAD_REQUEST,
                code: gatehouse_core::flow::ErrorCode::PasswordPolicyViolated,
                title: v.join(", "),
                pointer: None,
            },
            AdminError::Store(s) => s.into(),
            AdminError::Hashing(gatehouse_core::crypto::HashError::Overloaded) => ApiError::Overloaded,
            AdminError::Hashing(h) => ApiError::Internal(h.to_string()),
            AdminError::Template(t) => ApiError::Internal(t.to_string()),
        }
    }
}

/// A user as the admin API shows it: lock state and reason, counters, unlock count, factors; never a secret.
pub(crate) fn user_view(user: &User, totp: Option<bool>) -> serde_json::Value {
    let time = |t: Option<i64>| t.map(format_timestamp);
    let mut factors = Vec::new();
    if totp == Some(true) {
        factors.push("OATH_OTP");
    }
    if user.context_item("phone").is_some() {
        factors.push("MTAN");
    }
    serde_json::json!({
        "type": "user",
        "id": user.id,
        "attributes": {
            "username": user.username,
            "aliases": user.aliases,
            "roles": user.roles,
            "context": user.context,
            "locked": user.locked,
            "lockReason": user.lock_reason,
            "lockedAt": time(user.locked_at),
            "temporaryLockExpiry": time(user.temp_locked_until),
            "failedAttempts": user.failed_attempts,
            "unlockCount": user.unlock_count,
            "authMethod": user.auth_method,
            "factors": factors,
            "hasPassword": user.has_password(),
            "passwordChangedAt": time(user.password_changed_at),
            "validFrom": time(user.valid_from),
            "validUntil": time(user.valid_until),
            "createdAt": format_timestamp(user.created_at),
        }
    })
}
