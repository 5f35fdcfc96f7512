//! The application's own tables: its users (with the second factor each has chosen) and their sessions.

use std::path::Path;
use std::time::Duration;

use sqlx::SqlitePool;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions};

/// A session that has passed every factor its user has lasts this long.
pub const SESSION_SECONDS: i64 = 12 * 60 * 60;
/// A session waiting for the second step is only a few minutes' worth of password check.
pub const PENDING_SECONDS: i64 = 15 * 60;

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS users (
    id INTEGER PRIMARY KEY,
    email TEXT UNIQUE NOT NULL COLLATE NOCASE,
    password_hash TEXT NOT NULL,
    second_factor TEXT NOT NULL DEFAULT 'NONE' CHECK (second_factor IN ('NONE', 'GATEHOUSE')),
    created_at INTEGER NOT NULL DEFAULT (unixepoch())
);
CREATE TABLE IF NOT EXISTS sessions (
    id TEXT PRIMARY KEY,
    public_id TEXT UNIQUE NOT NULL,
    user_id INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    was_2fa INTEGER NOT NULL DEFAULT 0,
    csrf TEXT NOT NULL,
    created_at INTEGER NOT NULL DEFAULT (unixepoch()),
    expires_at INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS sessions_user_id ON sessions (user_id);
";

pub async fn open(path: &Path) -> anyhow::Result<SqlitePool> {
    let options = SqliteConnectOptions::new()
        .filename(path)
        .create_if_missing(true)
        .journal_mode(SqliteJournalMode::Wal)
        .foreign_keys(true)
        .busy_timeout(Duration::from_secs(5));
    let pool = SqlitePoolOptions::new().max_connections(4).connect_with(options).await?;
    sqlx::raw_sql(SCHEMA).execute(&pool).await?;
    Ok(pool)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SecondFactor {
    None,
    Gatehouse,
}

impl SecondFactor {
    fn as_str(self) -> &'static str {
        match self {
            Self::None => "NONE",
            Self::Gatehouse => "GATEHOUSE",
        }
    }

    /// A value this version does not know counts as a second factor: unknown must never mean "none".
    fn parse(value: &str) -> Self {
        if value == "NONE" { Self::None } else { Self::Gatehouse }
    }
}

#[derive(Debug, Clone)]
pub struct User {
    pub id: i64,
    pub password_hash: String,
    pub second_factor: SecondFactor,
}

pub async fn find_user(db: &SqlitePool, email: &str) -> sqlx::Result<Option<User>> {
    let row: Option<(i64, String, String)> =
        sqlx::query_as("SELECT id, password_hash, second_factor FROM users WHERE email = ?")
            .bind(email)
            .fetch_optional(db)
            .await?;
    Ok(row.map(|(id, password_hash, factor)| User { id, password_hash, second_factor: SecondFactor::parse(&factor) }))
}

/// The new user's id, or `None` when the address is taken.
pub async fn create_user(db: &SqlitePool, email: &str, password_hash: &str) -> sqlx::Result<Option<i64>> {
    let row: Option<(i64,)> = sqlx::query_as(
        "INSERT INTO users (email, password_hash) VALUES (?, ?) ON CONFLICT (email) DO NOTHING RETURNING id",
    )
    .bind(email)
    .bind(password_hash)
    .fetch_optional(db)
    .await?;
    Ok(row.map(|(id,)| id))
}

pub async fn set_second_factor(db: &SqlitePool, user_id: i64, factor: SecondFactor) -> sqlx::Result<()> {
    sqlx::query("UPDATE users SET second_factor = ? WHERE id = ?")
        .bind(factor.as_str())
        .bind(user_id)
        .execute(db)
        .await?;
    Ok(())
}

/// A live session with the user it belongs to.
#[derive(Debug, Clone)]
pub struct Session {
    pub id: String,
    /// Names the session to Gatehouse (`sid`), so the cookie value never leaves this server.
    pub public_id: String,
    pub csrf: String,
    pub was_2fa: bool,
    pub user_id: i64,
    pub email: String,
    pub second_factor: SecondFactor,
}

impl Session {
    /// Logged in with a password, but the user's second factor has not been passed yet.
    pub fn second_step_pending(&self) -> bool {
        self.second_factor == SecondFactor::Gatehouse && !self.was_2fa
    }
}

pub struct NewSession<'a> {
    pub id: &'a str,
    pub public_id: &'a str,
    pub csrf: &'a str,
    pub user_id: i64,
    pub was_2fa: bool,
    pub lifetime_seconds: i64,
}

pub async fn create_session(db: &SqlitePool, s: NewSession<'_>) -> sqlx::Result<()> {
    sqlx::query("DELETE FROM sessions WHERE expires_at <= unixepoch()").execute(db).await?;
    sqlx::query(
        "INSERT INTO sessions (id, public_id, user_id, was_2fa, csrf, expires_at)
         VALUES (?, ?, ?, ?, ?, unixepoch() + ?)",
    )
    .bind(s.id)
    .bind(s.public_id)
    .bind(s.user_id)
    .bind(s.was_2fa)
    .bind(s.csrf)
    .bind(s.lifetime_seconds)
    .execute(db)
    .await?;
    Ok(())
}

pub async fn find_session(db: &SqlitePool, id: &str) -> sqlx::Result<Option<Session>> {
    let row: Option<(String, String, String, bool, i64, String, String)> = sqlx::query_as(
        "SELECT s.id, s.public_id, s.csrf, s.was_2fa, u.id, u.email, u.second_factor
         FROM sessions s JOIN users u ON u.id = s.user_id
         WHERE s.id = ? AND s.expires_at > unixepoch()",
    )
    .bind(id)
    .fetch_optional(db)
    .await?;
    Ok(row.map(|(id, public_id, csrf, was_2fa, user_id, email, factor)| Session {
        id,
        public_id,
        csrf,
        was_2fa,
        user_id,
        email,
        second_factor: SecondFactor::parse(&factor),
    }))
}

/// Marks the second step passed under a new id and CSRF token (a session fixed before the login is worth
/// nothing after it). False if the session had already passed it or is gone: of two callbacks, one wins.
pub async fn complete_second_step(db: &SqlitePool, old_id: &str, new_id: &str, new_csrf: &str) -> sqlx::Result<bool> {
    let done = sqlx::query(
        "UPDATE sessions SET id = ?, csrf = ?, was_2fa = 1, expires_at = unixepoch() + ?
         WHERE id = ? AND was_2fa = 0 AND expires_at > unixepoch()",
    )
    .bind(new_id)
    .bind(new_csrf)
    .bind(SESSION_SECONDS)
    .bind(old_id)
    .execute(db)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// The session that just enrolled the device has shown it holds it: it keeps going once the factor is on.
pub async fn mark_second_step_passed(db: &SqlitePool, id: &str) -> sqlx::Result<()> {
    sqlx::query("UPDATE sessions SET was_2fa = 1 WHERE id = ?").bind(id).execute(db).await?;
    Ok(())
}

pub async fn delete_session(db: &SqlitePool, id: &str) -> sqlx::Result<()> {
    sqlx::query("DELETE FROM sessions WHERE id = ?").bind(id).execute(db).await?;
    Ok(())
}
