//! Decoding helpers shared by both backends.

use std::collections::BTreeMap;

use gatehouse_core::ports::StoreError;

pub(crate) fn db_error(e: sqlx::Error) -> StoreError {
    match e {
        sqlx::Error::PoolTimedOut | sqlx::Error::PoolClosed | sqlx::Error::Io(_) => {
            StoreError::Unavailable(e.to_string())
        }
        sqlx::Error::Database(ref db) if is_transient(db.code().as_deref()) => StoreError::Unavailable(e.to_string()),
        other => StoreError::Other(other.to_string()),
    }
}

/// Errors that mean "try again" (503 + Retry-After), not "broken": SQLite busy or locked past the busy
/// timeout (5, 6 and their extended codes), PostgreSQL deadlock, serialization failure, lock not available.
fn is_transient(code: Option<&str>) -> bool {
    matches!(code, Some("5" | "6" | "261" | "262" | "517" | "773" | "40P01" | "40001" | "55P03"))
}

/// Maps a unique-constraint violation on user creation to the name that was taken.
pub(crate) fn user_insert_error(e: sqlx::Error, login: &str, kind: &str) -> StoreError {
    if let sqlx::Error::Database(db) = &e
        && db.is_unique_violation()
    {
        return match kind {
            "alias" => StoreError::AliasTaken(login.to_owned()),
            "item" => StoreError::ItemTaken(login.to_owned()),
            _ => StoreError::UsernameTaken(login.to_owned()),
        };
    }
    db_error(e)
}

pub(crate) fn json_map(text: &str) -> Result<BTreeMap<String, String>, StoreError> {
    serde_json::from_str(text).map_err(|e| StoreError::Other(format!("corrupt context data: {e}")))
}

pub(crate) fn json_list(text: &str) -> Result<Vec<String>, StoreError> {
    serde_json::from_str(text).map_err(|e| StoreError::Other(format!("corrupt list: {e}")))
}

pub(crate) fn to_json<T: serde::Serialize>(value: &T) -> String {
    serde_json::to_string(value).unwrap_or_else(|_| "null".into())
}
