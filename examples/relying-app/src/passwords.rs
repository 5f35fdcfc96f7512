//! The application's own passwords: Argon2id (the crate's defaults), hashed off the async threads.

use std::sync::Arc;

use argon2::Argon2;
use argon2::password_hash::{PasswordHasher as _, PasswordVerifier as _};

pub const MIN_LENGTH: usize = 10;
/// Hashing is the expensive part of a login; an unbounded password would make it arbitrarily so.
pub const MAX_LENGTH: usize = 1024;

#[derive(Clone)]
pub struct Passwords {
    /// Unknown addresses are checked against this, so they take as long as known ones.
    dummy: Arc<str>,
}

impl Passwords {
    pub async fn new() -> anyhow::Result<Self> {
        let dummy = hash("relying-app dummy password".to_owned()).await?;
        Ok(Self { dummy: dummy.into() })
    }

    /// Whether `password` matches `stored`; with no stored hash, the same work for a certain "no".
    pub async fn verify(&self, password: String, stored: Option<String>) -> anyhow::Result<bool> {
        let known = stored.is_some();
        let stored = stored.unwrap_or_else(|| self.dummy.to_string());
        let matches = tokio::task::spawn_blocking(move || {
            Argon2::default().verify_password(password.as_bytes(), stored.as_str()).is_ok()
        })
        .await?;
        Ok(known && matches)
    }
}

pub async fn hash(password: String) -> anyhow::Result<String> {
    tokio::task::spawn_blocking(move || {
        Argon2::default()
            .hash_password(password.as_bytes())
            .map(|h| h.to_string())
            .map_err(|e| anyhow::anyhow!("hashing a password: {e}"))
    })
    .await?
}
