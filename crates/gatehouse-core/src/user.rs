//! Users as the store holds them, and the rules read off a user record.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::clock::Millis;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct User {
    pub id: String,
    pub username: String,
    pub aliases: Vec<String>,
    /// Context data items such as `email`, `phone`, `language`, `givenname`.
    pub context: BTreeMap<String, String>,
    pub roles: Vec<String>,
    /// PHC string; never leaves the server.
    #[serde(skip_serializing)]
    pub password_hash: Option<String>,
    pub valid_from: Option<Millis>,
    pub valid_until: Option<Millis>,
    pub locked: bool,
    pub lock_reason: Option<String>,
    pub locked_at: Option<Millis>,
    /// Temporary locking: no password is checked before this time.
    pub temp_locked_until: Option<Millis>,
    /// Failed-attempt counters keyed by authentication method id.
    pub failed_attempts: BTreeMap<String, i64>,
    pub unlock_count: i64,
    pub auth_method: Option<String>,
    pub password_changed_at: Option<Millis>,
    pub created_at: Millis,
    pub updated_at: Millis,
}

impl User {
    /// Valid = inside its validity period (either bound may be open).
    pub fn is_valid_at(&self, now: Millis) -> bool {
        self.valid_from.is_none_or(|from| now >= from) && self.valid_until.is_none_or(|until| now < until)
    }

    pub fn context_item(&self, key: &str) -> Option<&str> {
        self.context.get(key).map(String::as_str).filter(|v| !v.trim().is_empty())
    }

    pub fn has_password(&self) -> bool {
        self.password_hash.is_some()
    }
}

/// What `user add` (and later self-registration) creates.
#[derive(Debug, Clone, Default)]
pub struct NewUser {
    pub id: String,
    pub username: String,
    pub aliases: Vec<String>,
    pub context: BTreeMap<String, String>,
    pub roles: Vec<String>,
    pub password_hash: Option<String>,
    pub created_at: Millis,
    /// Stored locked with this reason (a registration not yet unlocked).
    pub lock_reason: Option<String>,
    pub auth_method: Option<String>,
    /// Context items that must be unique across users: (item, value), held by a unique index.
    pub unique_items: Vec<(String, String)>,
}

/// Lock reasons as the product names them.
pub mod lock_reason {
    pub const PREFIX_TOO_MANY_AUTH_ATTS: &str = "LockReason.TooManyAuthAtts.";
    pub const INITIATED_BY_ADMIN: &str = "LockReason.InitiatedByAdmin";
    pub const MAX_WRONG_OLD_PASSWORD: &str = "LockReason.MaxWrongOldPassword";

    pub fn too_many_auth_attempts(method_id: &str) -> String {
        format!("{PREFIX_TOO_MANY_AUTH_ATTS}{method_id}")
    }
}

/// Usernames and aliases are matched case-insensitively and without surrounding blanks.
pub fn normalize_login(name: &str) -> String {
    name.trim().to_lowercase()
}

/// One page of at most `limit` users. Without `search`: in username order, those after the username `after`.
/// With `search`: the users with a login name (username or alias) that starts with the text (compared after
/// [`normalize_login`], so case-insensitively; every character taken literally), each once, in the order of
/// their smallest such login name, those after the login name `after`.
#[derive(Debug, Clone, Default)]
pub struct UserPage {
    pub search: Option<String>,
    pub after: Option<String>,
    pub limit: u32,
}

/// What [`UserPage`] found: the users, and when the page is full the `after` of the next page (the last user's
/// username, or with `search` the login name it was found by).
#[derive(Debug, Clone, Default)]
pub struct FoundUsers {
    pub users: Vec<User>,
    pub next_cursor: Option<String>,
}
