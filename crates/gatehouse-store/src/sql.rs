//! The store, written once as a macro and instantiated for each backend's pool type.

use std::borrow::Borrow;
use std::collections::BTreeMap;

use async_trait::async_trait;
use gatehouse_core::audit::{AuditEvent, AuditOrder, AuditQuery};
use gatehouse_core::clock::Millis;
use gatehouse_core::config::{Counter, OverLimit};
use gatehouse_core::flow::session::{FlowKind, FlowSessionRecord, NewFlowSession, SessionStatus};
use gatehouse_core::ports::SelfUnlock;
use gatehouse_core::ports::{
    Acquired, AppEnrollment, AppToken, Application, Approval, ApprovalStatus, AuthSessionRecord, Channel,
    ClaimedMessage, Device, Effect, Enrolled, Failure, FlowSessionUpdate, OutboxMessage, Spent, Store, StoreError,
    TotpCredential,
};
use gatehouse_core::user::{FoundUsers, NewUser, User, UserPage, normalize_login};
use sqlx::Row as _;

use crate::group_commit::{FlowStart, FlowStarts};
use crate::rows::{db_error, json_list, json_map, to_json, user_insert_error};

pub(crate) struct SqliteStore {
    /// Reads: several connections, which WAL lets read at once.
    pub(crate) pool: sqlx::SqlitePool,
    /// Writes: one connection. SQLite takes one writer at a time anyway; with one connection the writers of
    /// this process queue in order on it instead of fighting over the file lock with busy-wait sleeps.
    pub(crate) writer: sqlx::SqlitePool,
    /// Approval events of this process. Another process on the same file (a second `gatehouse serve`) cannot
    /// announce its changes here, so while anyone waits, `look_again` sends
    /// [`LOOK_AGAIN`](gatehouse_core::ports::LOOK_AGAIN) once a second if any other connection committed.
    pub(crate) events: tokio::sync::broadcast::Sender<String>,
    /// The task that sends those, as long as the store lives.
    pub(crate) look_again: tokio::task::AbortHandle,
    /// Flows' first writes, committed in groups on the writer.
    pub(crate) flow_starts: FlowStarts,
    /// The admin search: the read pool (SQLite plans every statement the same way).
    pub(crate) search: sqlx::SqlitePool,
}

pub(crate) struct PgStore {
    pub(crate) pool: sqlx::PgPool,
    /// The admin search, on connections that plan prepared statements once (`plan_cache_mode =
    /// force_generic_plan`): its generic plan is the right one for any prefix (`pg_search!`), while PostgreSQL's own
    /// choice plans it anew per call wherever the parameters' range looks costly with parameters unknown — at 10 M
    /// users always, 0.35 ms of planning per call for 0.1 ms of work (docs/benchmarks.md, eighth session).
    pub(crate) search: sqlx::PgPool,
    /// The same pool: PostgreSQL writers lock rows, not the database.
    pub(crate) writer: sqlx::PgPool,
    /// Approval events of every node, relayed from PostgreSQL's LISTEN/NOTIFY.
    pub(crate) events: tokio::sync::broadcast::Sender<String>,
    /// The relay task (and its connection) lives as long as the store.
    pub(crate) listener: tokio::task::AbortHandle,
    /// Flows' first writes, committed in groups (one connection at a time).
    pub(crate) flow_starts: FlowStarts,
}

impl Drop for SqliteStore {
    fn drop(&mut self) {
        self.look_again.abort();
    }
}

impl Drop for PgStore {
    fn drop(&mut self) {
        self.listener.abort();
    }
}

/// The NOTIFY channel of approval events.
pub(crate) const EVENTS_CHANNEL: &str = "gatehouse_approval_events";

/// Payloads to announce after `effects` committed: `created:<user id>` and `decided:<approval id>`.
fn approval_events(effects: &[Effect]) -> Vec<String> {
    effects
        .iter()
        .filter_map(|e| match e {
            Effect::CreateApproval(a) => Some(format!("created:{}", a.user_id)),
            Effect::CancelApproval { id, .. } => Some(format!("decided:{id}")),
            _ => None,
        })
        .collect()
}

impl SqliteStore {
    async fn announce(&self, payloads: Vec<String>) {
        for p in payloads {
            // Nobody listening is fine.
            let _ = self.events.send(p);
        }
    }

    /// After a purge batch: copies the WAL back into the database file here, in housekeeping's time. Left to the
    /// automatic checkpoint, a request's commit would do it (a batch writes a few hundred random pages, megabytes
    /// of WAL), and that request would wait for it. PASSIVE: it takes no lock a request needs.
    async fn after_purge(&self) {
        if let Err(e) = sqlx::query("PRAGMA wal_checkpoint(PASSIVE)").execute(&self.pool).await {
            tracing::debug!(error = %e, "checkpoint after a purge batch failed");
        }
    }
}

impl PgStore {
    /// Nothing to do after a purge batch: PostgreSQL writes its WAL back in its own checkpointer.
    #[expect(clippy::unused_async, reason = "the SQLite store's counterpart is async")]
    async fn after_purge(&self) {}

    /// NOTIFY reaches every node's listener, this one's included, which relays it to local waiters. One that
    /// cannot be sent still reaches this node's waiters; those of other nodes see the change at their deadline
    /// (`authenticator.poll_wait_seconds` at most), when they read the database anyway.
    async fn announce(&self, payloads: Vec<String>) {
        for p in payloads {
            if let Err(e) =
                sqlx::query("SELECT pg_notify($1, $2)").bind(EVENTS_CHANNEL).bind(&p).execute(&self.pool).await
            {
                tracing::warn!(error = %e, "cannot NOTIFY an approval event; other nodes' waiters see it at their deadline");
                let _ = self.events.send(p);
            }
        }
    }
}

/// The user whose rows an effect changes (users, counters, sessions of that user).
fn effect_user(effect: &Effect) -> Option<&str> {
    match effect {
        Effect::SetPassword { user_id, .. }
        | Effect::ReleaseAttempt { user_id, .. }
        | Effect::ResetCounters { user_id, .. }
        | Effect::ResetAllCounters { user_id }
        | Effect::Lock { user_id, .. }
        | Effect::Unlock { user_id, .. }
        | Effect::SetValidity { user_id, .. }
        | Effect::SetTemporaryLock { user_id, .. }
        | Effect::ResetUnlockCount { user_id }
        | Effect::SetContextItem { user_id, .. }
        | Effect::SetRoles { user_id, .. }
        | Effect::SetAuthMethod { user_id, .. }
        | Effect::EndUserSessions { user_id, .. } => Some(user_id),
        _ => None,
    }
}

/// What the lock pass (the first statement on each user's row, see `apply_in`) also writes for one user: the
/// temporary lock and the unlock count a completed login clears. Folded into that statement, they cost no
/// statement of their own.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct LockPass {
    pub(crate) clears_temporary_lock: bool,
    pub(crate) resets_unlock_count: bool,
}

impl LockPass {
    /// The lock pass of `user` among `effects`. Clearing the temporary lock moves first only if no effect in
    /// the batch sets one for that user (the order of the two decides the outcome); nothing else in a batch
    /// writes the unlock count.
    pub(crate) fn of<E: Borrow<Effect>>(user: &str, effects: &[E]) -> Self {
        let (mut clears, mut sets, mut resets) = (false, false, false);
        for effect in effects {
            match effect.borrow() {
                Effect::SetTemporaryLock { user_id, until } if user_id == user => {
                    if until.is_some() {
                        sets = true;
                    } else {
                        clears = true;
                    }
                }
                Effect::ResetUnlockCount { user_id } if user_id == user => resets = true,
                _ => {}
            }
        }
        Self { clears_temporary_lock: clears && !sets, resets_unlock_count: resets }
    }

    fn statement(self) -> &'static str {
        match (self.clears_temporary_lock, self.resets_unlock_count) {
            (true, true) => "UPDATE users SET temp_locked_until = NULL, unlock_count = 0 WHERE id = $1",
            (true, false) => "UPDATE users SET temp_locked_until = NULL WHERE id = $1",
            (false, true) => "UPDATE users SET unlock_count = 0 WHERE id = $1",
            (false, false) => "UPDATE users SET updated_at = updated_at WHERE id = $1",
        }
    }

    /// Whether `effect` was written by the lock pass already.
    fn covers(self, effect: &Effect) -> bool {
        match effect {
            Effect::SetTemporaryLock { until: None, .. } => self.clears_temporary_lock,
            Effect::ResetUnlockCount { .. } => self.resets_unlock_count,
            _ => false,
        }
    }
}

macro_rules! user_columns {
    () => {
        concat!(
            "id, username, context_data, roles, password_hash, valid_from, valid_until, locked, lock_reason, locked_at, temp_locked_until, ",
            "unlock_count, auth_method, password_changed_at, created_at, updated_at, aliases"
        )
    };
}

/// Users with their failed-attempt counters as a JSON column (`counters_json`) from `$from`: one statement for what
/// would be two. The aggregate is a correlated subquery in each backend's spelling, by user id (`failed_attempts`
/// holds rows only for users with attempts not yet reset). The aliases are a column of the user's row (migration
/// 0017): they are written with the user and never change.
macro_rules! users_with_counters {
    ($head:literal, $counters:literal, $($from:tt)+) => {
        concat!("SELECT ", $head, user_columns!(), ", ", $counters, " AS counters_json FROM ", $($from)+)
    };
}

macro_rules! sqlite_users {
    ($head:literal, $($from:tt)+) => {
        users_with_counters!(
            $head,
            "(SELECT json_group_object(method, count) FROM failed_attempts WHERE user_id = users.id AND count > 0)",
            $($from)+
        )
    };
}

macro_rules! pg_users {
    ($head:literal, $($from:tt)+) => {
        users_with_counters!(
            $head,
            "(SELECT COALESCE(json_object_agg(method, count), '{}')::text FROM failed_attempts WHERE user_id = users.id AND count > 0)",
            $($from)+
        )
    };
}

/// The login names of a search: `$1` is the prefix, `$from` bounds the names from below (the prefix, or the cursor),
/// `$to` from above; of each user only the smallest name that matches.
///
/// A name is its user's smallest match when the user's name just before it (`previous`, migration 0017) is absent
/// or before the prefix: one column of the entry the range reads anyway. Before 0017 that took a descent into
/// `logins_owner` per name read, which at 10 M users was half of a page's cost (docs/benchmarks.md, tenth session).
/// A user's names never change once written, so `previous` never goes stale.
///
/// Every step goes by name, so that neighbouring names of a page are neighbouring entries (migrations 0015, and
/// 0016 on SQLite): the range is the primary key of `logins`, and the user is found by username. Lower-case login
/// names in code point order are exactly those between the prefix and its successor: that is SQLite's order, and
/// PostgreSQL's for these columns whatever the database's collation (migration 0016 gives them the C collation;
/// under a linguistic one the range held "éa" for the prefix "e").
macro_rules! search_names {
    ($from:literal, $to:literal) => {
        concat!("l.login ", $from, $to, " AND (l.previous IS NULL OR l.previous < $1)")
    };
}

/// Users by a prefix of their login names (see [`search_names!`]); `page_key` is the login name a user was found by.
/// SQLite's plan: `SEARCH l USING PRIMARY KEY (login>? AND login<?)`, then `SEARCH users USING PRIMARY KEY
/// (username=?)` — no scan, no temporary B-tree for the ORDER BY, no lookup by user id (`plan_tests`).
macro_rules! sqlite_search {
    ($from:literal, $to:literal, $limit:literal) => {
        sqlite_users!(
            "l.login AS page_key, ",
            "logins l JOIN users ON users.username = l.owner WHERE ",
            search_names!($from, $to),
            " ORDER BY l.login LIMIT ",
            $limit
        )
    };
}

/// PostgreSQL's spelling of [`sqlite_search!`]: the page's names first, then each user by username in a LATERAL
/// subquery that `OFFSET 0` keeps from being merged into a join. That leaves the planner one sensible plan, found
/// both by a plan for the call's values and by the generic plan for any values that a prepared statement switches to
/// after five calls when it looks cheaper: `Index Only Scan using logins_pkey` in order, stopping at the limit, then
/// `Index Scan using users_username_key` per name (`plan_tests`). As one join, the generic plan at 1,000 users hashed
/// the whole range and sorted it (about 5 ms a page instead of 1.5); at 10 M it was a parallel Gather Merge, which
/// migration 0016 rules out (docs/benchmarks.md, eighth session).
macro_rules! pg_search {
    ($from:literal, $to:literal, $limit:literal) => {
        concat!(
            "SELECT p.login AS page_key, u.* FROM (SELECT l.login, l.owner FROM logins l WHERE ",
            search_names!($from, $to),
            " ORDER BY l.login LIMIT ",
            $limit,
            ") p CROSS JOIN LATERAL (",
            pg_users!("", "users WHERE users.username = p.owner OFFSET 0"),
            ") u ORDER BY p.login"
        )
    };
}

macro_rules! select_applications {
    () => {
        "SELECT id, name, origin, callback_url, created_at, key_rotated_at, revoked_at FROM applications"
    };
}

/// Every statement that reads whole users, in one backend's spelling.
struct UserQueries {
    by_login: &'static str,
    by_id: &'static str,
    all: &'static str,
    /// Keyset paging by username (its unique index), from the start or after `$1`.
    first: &'static str,
    after: &'static str,
    search_first: &'static str,
    search_after: &'static str,
    /// A prefix of only U+10FFFF has no successor: every name from it on starts with it.
    search_first_open: &'static str,
    search_after_open: &'static str,
}

macro_rules! user_queries {
    ($users:ident, $search:ident) => {
        UserQueries {
            by_login: $users!("", "users WHERE username = (SELECT owner FROM logins WHERE login = $1)"),
            by_id: $users!("", "users WHERE id = $1"),
            all: $users!("", "users ORDER BY username"),
            first: $users!("", "users ORDER BY username LIMIT $1"),
            after: $users!("", "users WHERE username > $1 ORDER BY username LIMIT $2"),
            search_first: $search!(">= $1", " AND l.login < $2", "$3"),
            search_after: $search!("> $2", " AND l.login < $3", "$4"),
            search_first_open: $search!(">= $1", "", "$2"),
            search_after_open: $search!("> $2", "", "$3"),
        }
    };
}

const SQLITE_USERS: UserQueries = user_queries!(sqlite_users, sqlite_search);
const PG_USERS: UserQueries = user_queries!(pg_users, pg_search);

/// How stale an admin token's `last_used_at` may be before a use writes it again.
const ADMIN_TOKEN_USE_PRECISION_MS: Millis = 60_000;

/// The smallest text after every text that starts with `prefix`, in code point order (none if `prefix` is only
/// U+10FFFF): `login >= prefix AND login < end` is a prefix match that a B-tree index serves.
fn prefix_end(prefix: &str) -> Option<String> {
    let mut chars: Vec<char> = prefix.chars().collect();
    while let Some(last) = chars.pop() {
        let next = if last == '\u{D7FF}' { Some('\u{E000}') } else { char::from_u32(u32::from(last) + 1) };
        if let Some(next) = next {
            chars.push(next);
            return Some(chars.into_iter().collect());
        }
    }
    None
}

/// The rows of `logins` for a new user: the username, then the aliases in the order given (a name taken is reported
/// in that order), each with the user's name just before it in code point order (`previous`, see [`search_names!`]).
fn login_names<'a>(
    username: &'a str,
    aliases: &'a [String],
) -> impl Iterator<Item = (&'a str, &'static str, Option<&'a str>)> {
    let names: std::collections::BTreeSet<&str> =
        std::iter::once(username).chain(aliases.iter().map(String::as_str)).collect();
    std::iter::once((username, "username"))
        .chain(aliases.iter().map(|a| (a.as_str(), "alias")))
        .map(move |(name, kind)| (name, kind, names.range(..name).next_back().copied()))
}

/// Ids bound in one `IN (…)` list at most: far below every backend's limit on parameters (SQLite's 32,766,
/// PostgreSQL's 65,535), and a statement's plan stays small.
const IDS_PER_STATEMENT: usize = 500;

const SESSION_COLUMNS: &str = "id, kind, flow_id, state, status, version, created_at, last_seen_at, expires_at";

macro_rules! store_impl {
    ($store:ident, $db:ty, $now_sql:literal, $claim_sql:expr, $claim_setting:expr, $users:expr) => {
        impl $store {
            fn user_from_row(row: &<$db as sqlx::Database>::Row) -> Result<User, sqlx::Error> {
                let context: String = row.try_get("context_data")?;
                let roles: String = row.try_get("roles")?;
                let aliases: String = row.try_get("aliases")?;
                Ok(User {
                    id: row.try_get("id")?,
                    username: row.try_get("username")?,
                    aliases: json_list(&aliases).map_err(|e| sqlx::Error::Decode(e.to_string().into()))?,
                    context: json_map(&context).map_err(|e| sqlx::Error::Decode(e.to_string().into()))?,
                    roles: json_list(&roles).map_err(|e| sqlx::Error::Decode(e.to_string().into()))?,
                    password_hash: row.try_get("password_hash")?,
                    valid_from: row.try_get("valid_from")?,
                    valid_until: row.try_get("valid_until")?,
                    locked: row.try_get("locked")?,
                    lock_reason: row.try_get("lock_reason")?,
                    locked_at: row.try_get("locked_at")?,
                    temp_locked_until: row.try_get("temp_locked_until")?,
                    failed_attempts: BTreeMap::new(),
                    unlock_count: row.try_get("unlock_count")?,
                    auth_method: row.try_get("auth_method")?,
                    password_changed_at: row.try_get("password_changed_at")?,
                    created_at: row.try_get("created_at")?,
                    updated_at: row.try_get("updated_at")?,
                })
            }

            fn application_from_row(r: &<$db as sqlx::Database>::Row) -> Result<Application, sqlx::Error> {
                Ok(Application {
                    id: r.try_get("id")?,
                    name: r.try_get("name")?,
                    origin: r.try_get("origin")?,
                    callback_url: r.try_get("callback_url")?,
                    created_at: r.try_get("created_at")?,
                    key_rotated_at: r.try_get("key_rotated_at")?,
                    revoked_at: r.try_get("revoked_at")?,
                })
            }

            fn device_from_row(row: &<$db as sqlx::Database>::Row) -> Result<Device, sqlx::Error> {
                Ok(Device {
                    id: row.try_get("id")?,
                    user_id: row.try_get("user_id")?,
                    public_key: row.try_get("public_key")?,
                    sealed_offline: row.try_get("sealed_offline")?,
                    display_name: row.try_get("display_name")?,
                    created_at: row.try_get("created_at")?,
                    last_seen_at: row.try_get("last_seen_at")?,
                })
            }

            fn approval_from_row(row: &<$db as sqlx::Database>::Row) -> Result<Approval, StoreError> {
                let context: String = row.try_get("context").map_err(db_error)?;
                let choices: String = row.try_get("choices").map_err(db_error)?;
                let status: String = row.try_get("status").map_err(db_error)?;
                let number: i64 = row.try_get("number").map_err(db_error)?;
                Ok(Approval {
                    id: row.try_get("id").map_err(db_error)?,
                    user_id: row.try_get("user_id").map_err(db_error)?,
                    kind: row.try_get("kind").map_err(db_error)?,
                    context: serde_json::from_str(&context).unwrap_or(serde_json::Value::Null),
                    number: u32::try_from(number).unwrap_or(0),
                    choices: serde_json::from_str(&choices).map_err(|e| StoreError::Other(format!("corrupt choices: {e}")))?,
                    nonce: row.try_get("nonce").map_err(db_error)?,
                    status: ApprovalStatus::parse(&status).ok_or_else(|| StoreError::Other(format!("unknown status `{status}`")))?,
                    device_id: row.try_get("device_id").map_err(db_error)?,
                    created_at: row.try_get("created_at").map_err(db_error)?,
                    expires_at: row.try_get("expires_at").map_err(db_error)?,
                    decided_at: row.try_get("decided_at").map_err(db_error)?,
                })
            }

            /// Appends `ids` as bound parameters separated by commas, then `tail`: the list of an `IN (…)`. Callers
            /// pass at most [`IDS_PER_STATEMENT`] ids.
            fn push_ids(query: &mut sqlx::QueryBuilder<$db>, ids: &[String], tail: &str) {
                let mut list = query.separated(", ");
                for id in ids {
                    list.push_bind(id.as_str());
                }
                list.push_unseparated(tail);
            }

            /// A user from a row of [`UserQueries`], with its failed-attempt counters.
            fn full_user_from_row(row: &<$db as sqlx::Database>::Row) -> Result<User, StoreError> {
                let mut user = Self::user_from_row(row).map_err(db_error)?;
                let counters: Option<String> = row.try_get("counters_json").map_err(db_error)?;
                user.failed_attempts = match counters.as_deref() {
                    Some(text) => serde_json::from_str(text)
                        .map_err(|e| StoreError::Other(format!("corrupt failed-attempt counters: {e}")))?,
                    None => BTreeMap::new(),
                };
                Ok(user)
            }

            async fn one_user(&self, sql: &'static str, key: &str) -> Result<Option<User>, StoreError> {
                let row = sqlx::query(sql).bind(key).fetch_optional(&self.pool).await.map_err(db_error)?;
                row.as_ref().map(Self::full_user_from_row).transpose()
            }

            /// Writes a batch of flow starts (see [`crate::group_commit`]) in one transaction. If that fails, each
            /// start is tried again in a transaction of its own, so that one start's error (or a deadlock between
            /// the batch's users and another transaction's) fails that start only.
            pub(crate) async fn write_flow_starts(writer: &sqlx::Pool<$db>, starts: Vec<FlowStart>) -> Vec<Result<bool, StoreError>> {
                match Self::flow_starts_in_one(writer, &starts).await {
                    Ok(created) => created.into_iter().map(Ok).collect(),
                    Err(e) if starts.len() == 1 => vec![Err(db_error(e))],
                    Err(e) => {
                        tracing::debug!(error = %e, size = starts.len(), "a batch of flow starts failed; writing them one by one");
                        let mut results = Vec::with_capacity(starts.len());
                        for start in &starts {
                            let one = Self::flow_starts_in_one(writer, std::slice::from_ref(start)).await;
                            results.push(one.map(|created| created.first().copied().unwrap_or(false)).map_err(db_error));
                        }
                        results
                    }
                }
            }

            /// A batch of flow starts in one transaction and a few statements whatever its size: one INSERT of every
            /// flow row, then the effects of the starts that created their flow, applied together. Written statement by
            /// statement per start, a batch of 30 was about 90 round trips to the writer's thread (SQLite) or to the
            /// server (PostgreSQL) while every start in it waited.
            ///
            /// A batch holds at most `group_commit::MAX_BATCH` starts, 9 parameters each: far below either backend's limit
            /// per statement. Each batch size is a statement text of its own in the connection's statement cache (sqlx
            /// keeps 100); chunks of powers of two (a handful of texts, a statement more per halving) were measured
            /// against this and gained nothing.
            async fn flow_starts_in_one(writer: &sqlx::Pool<$db>, starts: &[FlowStart]) -> Result<Vec<bool>, sqlx::Error> {
                if starts.is_empty() {
                    return Ok(Vec::new());
                }
                let mut tx = writer.begin().await?;
                let mut insert = sqlx::QueryBuilder::<$db>::new(
                    "INSERT INTO flow_sessions (id, token_hash, kind, flow_id, state, status, version, created_at, last_seen_at, expires_at) ",
                );
                insert.push_values(starts, |mut row, FlowStart { session: s, .. }| {
                    row.push_bind(s.id.as_str())
                        .push_bind(s.token_hash.as_str())
                        .push_bind(s.kind.as_str())
                        .push_bind(s.flow_id.as_str())
                        .push_bind(s.state.to_string())
                        .push_bind(s.status.as_str())
                        .push("0")
                        .push_bind(s.created_at)
                        .push_bind(s.last_seen_at)
                        .push_bind(s.expires_at);
                });
                insert.push(" ON CONFLICT (id) DO NOTHING RETURNING id, token_hash");
                let mut inserted = Vec::with_capacity(starts.len());
                for row in insert.build().fetch_all(&mut *tx).await? {
                    inserted.push((row.try_get::<String, _>("id")?, row.try_get::<String, _>("token_hash")?));
                }
                // A flow that already existed (a raced or replayed start) writes none of its effects. Two starts of one
                // flow in this batch: the first row of an id is the one inserted, so the first start that matches it
                // (id and token) created it, and a replay with the very same token did not.
                let created: Vec<bool> = starts
                    .iter()
                    .map(|FlowStart { session: s, .. }| {
                        let won = inserted.iter().position(|(id, token)| *id == s.id && *token == s.token_hash);
                        won.map(|i| inserted.swap_remove(i)).is_some()
                    })
                    .collect();
                let effects: Vec<&Effect> =
                    starts.iter().zip(&created).filter(|(_, c)| **c).flat_map(|(start, _)| &start.effects).collect();
                Self::apply_in(&mut tx, &effects).await?;
                tx.commit().await?;
                Ok(created)
            }

            async fn apply_in<E: Borrow<Effect> + Sync>(
                conn: &mut <$db as sqlx::Database>::Connection,
                effects: &[E],
            ) -> Result<(), sqlx::Error> {
                // Every transaction takes the rows of the users it touches first, in id order, before any other
                // table: two transactions never wait for each other in opposite orders (users, then counters).
                let mut users: Vec<&str> = effects.iter().filter_map(|e| effect_user(e.borrow())).collect();
                users.sort_unstable();
                users.dedup();
                let mut passes = Vec::with_capacity(users.len());
                for user_id in users {
                    let pass = LockPass::of(user_id, effects);
                    sqlx::query(pass.statement()).bind(user_id).execute(&mut *conn).await?;
                    passes.push((user_id, pass));
                }
                let done_by_lock_pass = |effect: &Effect| {
                    effect_user(effect).is_some_and(|u| passes.iter().any(|(p, pass)| *p == u && pass.covers(effect)))
                };
                let mut queued: Vec<&OutboxMessage> = Vec::new();
                for effect in effects {
                    if done_by_lock_pass(effect.borrow()) {
                        continue;
                    }
                    match effect.borrow() {
                        Effect::SetPassword { user_id, password_hash, at } => {
                            sqlx::query("UPDATE users SET password_hash = $2, password_changed_at = $3, updated_at = $3 WHERE id = $1")
                                .bind(user_id)
                                .bind(password_hash)
                                .bind(at)
                                .execute(&mut *conn)
                                .await?;
                        }
                        Effect::ReleaseAttempt { user_id, method_id } => {
                            sqlx::query("UPDATE failed_attempts SET pending = pending - 1 WHERE user_id = $1 AND method = $2 AND pending > 0")
                                .bind(user_id)
                                .bind(method_id)
                                .execute(&mut *conn)
                                .await?;
                        }
                        Effect::ResetCounters { user_id, method_ids } => {
                            for method in method_ids {
                                sqlx::query("DELETE FROM failed_attempts WHERE user_id = $1 AND method = $2")
                                    .bind(user_id)
                                    .bind(method)
                                    .execute(&mut *conn)
                                    .await?;
                            }
                        }
                        Effect::ResetAllCounters { user_id } => {
                            sqlx::query("DELETE FROM failed_attempts WHERE user_id = $1").bind(user_id).execute(&mut *conn).await?;
                        }
                        Effect::Lock { user_id, reason, at, replace } => {
                            let sql = if *replace {
                                "UPDATE users SET locked = TRUE, lock_reason = $2, locked_at = $3, updated_at = $3 WHERE id = $1"
                            } else {
                                "UPDATE users SET locked = TRUE, lock_reason = $2, locked_at = $3, updated_at = $3 \
                                 WHERE id = $1 AND locked = FALSE"
                            };
                            sqlx::query(sql).bind(user_id).bind(reason).bind(at).execute(&mut *conn).await?;
                        }
                        Effect::Unlock { user_id, at } => {
                            sqlx::query(
                                "UPDATE users SET locked = FALSE, lock_reason = NULL, locked_at = NULL, updated_at = $2 WHERE id = $1",
                            )
                            .bind(user_id)
                            .bind(at)
                            .execute(&mut *conn)
                            .await?;
                            sqlx::query("DELETE FROM failed_attempts WHERE user_id = $1").bind(user_id).execute(&mut *conn).await?;
                        }
                        Effect::DeleteUser { user_id } => {
                            sqlx::query("DELETE FROM users WHERE id = $1").bind(user_id).execute(&mut *conn).await?;
                        }
                        Effect::SetValidity { user_id, valid_from, valid_until, at } => {
                            sqlx::query("UPDATE users SET valid_from = $2, valid_until = $3, updated_at = $4 WHERE id = $1")
                                .bind(user_id)
                                .bind(valid_from)
                                .bind(valid_until)
                                .bind(at)
                                .execute(&mut *conn)
                                .await?;
                        }
                        Effect::SetTemporaryLock { user_id, until } => {
                            sqlx::query("UPDATE users SET temp_locked_until = $2 WHERE id = $1")
                                .bind(user_id)
                                .bind(until)
                                .execute(&mut *conn)
                                .await?;
                        }
                        Effect::ResetUnlockCount { user_id } => {
                            sqlx::query("UPDATE users SET unlock_count = 0 WHERE id = $1 AND unlock_count <> 0")
                                .bind(user_id)
                                .execute(&mut *conn)
                                .await?;
                        }
                        Effect::SetContextItem { user_id, key, value, at } => {
                            // Read-modify-write of one JSON document: serialise writers on the row first.
                            sqlx::query("UPDATE users SET updated_at = $2 WHERE id = $1")
                                .bind(user_id)
                                .bind(at)
                                .execute(&mut *conn)
                                .await?;
                            let row = sqlx::query("SELECT context_data FROM users WHERE id = $1")
                                .bind(user_id)
                                .fetch_optional(&mut *conn)
                                .await?;
                            if let Some(row) = row {
                                let text: String = row.try_get("context_data")?;
                                let mut context = json_map(&text).map_err(|e| sqlx::Error::Decode(e.to_string().into()))?;
                                match value {
                                    Some(v) => context.insert(key.clone(), v.clone()),
                                    None => context.remove(key),
                                };
                                sqlx::query("UPDATE users SET context_data = $2 WHERE id = $1")
                                    .bind(user_id)
                                    .bind(to_json(&context))
                                    .execute(&mut *conn)
                                    .await?;
                                // A unique item follows its context value (the primary key still holds).
                                match value {
                                    Some(v) => sqlx::query("UPDATE unique_items SET value = $3 WHERE user_id = $1 AND item = $2")
                                        .bind(user_id)
                                        .bind(key)
                                        .bind(v)
                                        .execute(&mut *conn)
                                        .await?,
                                    None => sqlx::query("DELETE FROM unique_items WHERE user_id = $1 AND item = $2")
                                        .bind(user_id)
                                        .bind(key)
                                        .execute(&mut *conn)
                                        .await?,
                                };
                            }
                        }
                        Effect::SetRoles { user_id, roles, at } => {
                            sqlx::query("UPDATE users SET roles = $2, updated_at = $3 WHERE id = $1")
                                .bind(user_id)
                                .bind(to_json(roles))
                                .bind(at)
                                .execute(&mut *conn)
                                .await?;
                        }
                        Effect::SetAuthMethod { user_id, method, at } => {
                            sqlx::query("UPDATE users SET auth_method = $2, updated_at = $3 WHERE id = $1")
                                .bind(user_id)
                                .bind(method)
                                .bind(at)
                                .execute(&mut *conn)
                                .await?;
                        }
                        Effect::CreateAuthSession(s) => {
                            sqlx::query(
                                "INSERT INTO auth_sessions (id, token_hash, user_id, factors, created_at, authenticated_at, last_seen_at, expires_at) \
                                 VALUES ($1, $2, $3, $4, $5, $5, $5, $6)",
                            )
                            .bind(&s.id)
                            .bind(&s.token_hash)
                            .bind(&s.user_id)
                            .bind(to_json(&s.factors))
                            .bind(s.created_at)
                            .bind(s.expires_at)
                            .execute(&mut *conn)
                            .await?;
                        }
                        Effect::SetSecretAnswers { user_id, answers, at } => {
                            sqlx::query("DELETE FROM secret_answers WHERE user_id = $1")
                                .bind(user_id)
                                .execute(&mut *conn)
                                .await?;
                            for (question, hash) in answers {
                                sqlx::query(
                                    "INSERT INTO secret_answers (user_id, question, answer_hash, created_at) VALUES ($1, $2, $3, $4)",
                                )
                                .bind(user_id)
                                .bind(question)
                                .bind(hash)
                                .bind(at)
                                .execute(&mut *conn)
                                .await?;
                            }
                        }
                        Effect::CreateContinuationToken(t) => {
                            sqlx::query(
                                // For no one (a stealth link), the same statement inserts nothing.
                                "INSERT INTO continuation_tokens (token_hash, user_id, flow_id, created_at, expires_at) \
                                 SELECT $1, $2, $3, $4, $5 WHERE EXISTS (SELECT 1 FROM users WHERE id = $2)",
                            )
                            .bind(&t.token_hash)
                            .bind(&t.user_id)
                            .bind(&t.flow_id)
                            .bind(t.created_at)
                            .bind(t.expires_at)
                            .execute(&mut *conn)
                            .await?;
                        }
                        Effect::ReauthenticateSession { id, at } => {
                            sqlx::query("UPDATE auth_sessions SET authenticated_at = $2 WHERE id = $1 AND ended_at IS NULL")
                                .bind(id)
                                .bind(at)
                                .execute(&mut *conn)
                                .await?;
                        }
                        Effect::EndUserSessions { user_id, except, at } => {
                            sqlx::query(
                                "UPDATE auth_sessions SET ended_at = $3 WHERE user_id = $1 AND ended_at IS NULL \
                                 AND ($2 IS NULL OR id <> $2)",
                            )
                            .bind(user_id)
                            .bind(except.as_deref())
                            .bind(at)
                            .execute(&mut *conn)
                            .await?;
                        }
                        Effect::EndAuthSession { id, at } => {
                            sqlx::query("UPDATE auth_sessions SET ended_at = $2 WHERE id = $1 AND ended_at IS NULL")
                                .bind(id)
                                .bind(at)
                                .execute(&mut *conn)
                                .await?;
                        }
                        Effect::SetTotp { user_id, sealed_secret, at } => {
                            sqlx::query(
                                "INSERT INTO totp_credentials (user_id, sealed_secret, confirmed, last_step, created_at) \
                                 VALUES ($1, $2, FALSE, 0, $3) ON CONFLICT (user_id) DO UPDATE \
                                 SET sealed_secret = $2, confirmed = FALSE, last_step = 0, created_at = $3",
                            )
                            .bind(user_id)
                            .bind(sealed_secret)
                            .bind(at)
                            .execute(&mut *conn)
                            .await?;
                        }
                        Effect::ConfirmTotp { user_id } => {
                            sqlx::query("UPDATE totp_credentials SET confirmed = TRUE WHERE user_id = $1")
                                .bind(user_id)
                                .execute(&mut *conn)
                                .await?;
                        }
                        Effect::DeleteTotp { user_id } => {
                            sqlx::query("DELETE FROM totp_credentials WHERE user_id = $1").bind(user_id).execute(&mut *conn).await?;
                        }
                        Effect::CreateActivation { code_hash, user_id, at, expires_at } => {
                            sqlx::query("INSERT INTO activations (code_hash, user_id, created_at, expires_at) VALUES ($1, $2, $3, $4)")
                                .bind(code_hash)
                                .bind(user_id)
                                .bind(at)
                                .bind(expires_at)
                                .execute(&mut *conn)
                                .await?;
                        }
                        Effect::CreateApproval(a) => {
                            sqlx::query(
                                "INSERT INTO approvals (id, user_id, kind, context, number, choices, nonce, status, created_at, expires_at) \
                                 VALUES ($1, $2, $3, $4, $5, $6, $7, 'pending', $8, $9)",
                            )
                            .bind(&a.id)
                            .bind(&a.user_id)
                            .bind(&a.kind)
                            .bind(a.context.to_string())
                            .bind(i64::from(a.number))
                            .bind(to_json(&a.choices))
                            .bind(&a.nonce)
                            .bind(a.created_at)
                            .bind(a.expires_at)
                            .execute(&mut *conn)
                            .await?;
                        }
                        Effect::CancelApproval { id, at } => {
                            sqlx::query("UPDATE approvals SET status = 'cancelled', decided_at = $2 WHERE id = $1 AND status = 'pending'")
                                .bind(id)
                                .bind(at)
                                .execute(&mut *conn)
                                .await?;
                        }
                        Effect::RenameDevice { id, user_id, display_name } => {
                            sqlx::query("UPDATE devices SET display_name = $3 WHERE id = $1 AND user_id = $2")
                                .bind(id)
                                .bind(user_id)
                                .bind(display_name)
                                .execute(&mut *conn)
                                .await?;
                        }
                        Effect::DeleteDevice { id, user_id } => {
                            sqlx::query("DELETE FROM devices WHERE id = $1 AND user_id = $2")
                                .bind(id)
                                .bind(user_id)
                                .execute(&mut *conn)
                                .await?;
                        }
                        // Both written together below, one statement each for all of them: no other effect reads or
                        // changes the outbox or the audit trail.
                        Effect::Enqueue(m) => queued.push(m),
                        Effect::Audit(_) => {}
                    }
                }
                // 7 parameters a row; a message claimed as it is queued counts that claim as its first attempt, as a
                // claim does.
                for chunk in queued.chunks(1000) {
                    let mut insert = sqlx::QueryBuilder::<$db>::new(
                        "INSERT INTO outbox (id, channel, sealed, created_at, next_attempt_at, claimed_until, attempts) ",
                    );
                    insert.push_values(chunk, |mut row, m| {
                        row.push_bind(m.id.as_str())
                            .push_bind(m.channel.as_str())
                            .push_bind(m.sealed.as_str())
                            .push_bind(m.created_at)
                            .push_bind(m.created_at)
                            .push_bind(m.claimed_until)
                            .push_bind(i64::from(m.claimed_until.is_some()));
                    });
                    insert.build().execute(&mut *conn).await?;
                }
                let events: Vec<&AuditEvent> = effects
                    .iter()
                    .filter_map(|e| if let Effect::Audit(ev) = e.borrow() { Some(ev) } else { None })
                    .collect();
                // 11 parameters a row: 1,000 rows stay below either backend's limit per statement.
                for chunk in events.chunks(1000) {
                    let mut insert = sqlx::QueryBuilder::<$db>::new(
                        "INSERT INTO audit_events (id, at, event, actor, user_id, username, flow_id, session_id, ip, outcome, details) ",
                    );
                    insert.push_values(chunk, |mut row, ev| {
                        row.push_bind(ev.id.clone())
                            .push_bind(ev.at)
                            .push_bind(ev.event.clone())
                            .push_bind(ev.actor.clone())
                            .push_bind(ev.user_id.clone())
                            .push_bind(ev.username.clone())
                            .push_bind(ev.flow_id.clone())
                            .push_bind(ev.session_id.clone())
                            .push_bind(ev.ip.clone())
                            .push_bind(ev.outcome.clone())
                            .push_bind(ev.details.to_string());
                    });
                    insert.build().execute(&mut *conn).await?;
                }
                Ok(())
            }
        }

        #[async_trait]
        impl Store for $store {
            async fn ping(&self) -> Result<(), StoreError> {
                sqlx::query("SELECT 1").execute(&self.pool).await.map(|_| ()).map_err(|e| StoreError::Unavailable(e.to_string()))
            }

            async fn create_user(&self, user: &NewUser, audit: &AuditEvent) -> Result<User, StoreError> {
                let mut tx = self.writer.begin().await.map_err(db_error)?;
                let aliases: Vec<String> = user.aliases.iter().map(|a| normalize_login(a)).collect();
                let mut sorted_aliases = aliases.clone();
                sorted_aliases.sort_unstable();
                sqlx::query(
                    "INSERT INTO users (id, username, context_data, roles, password_hash, password_changed_at, created_at, updated_at, \
                     locked, lock_reason, locked_at, auth_method, aliases) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $7, $8, $9, $10, $11, $12)",
                )
                .bind(&user.id)
                .bind(&user.username)
                .bind(to_json(&user.context))
                .bind(to_json(&user.roles))
                .bind(&user.password_hash)
                .bind(user.password_hash.as_ref().map(|_| user.created_at))
                .bind(user.created_at)
                .bind(user.lock_reason.is_some())
                .bind(&user.lock_reason)
                .bind(user.lock_reason.as_ref().map(|_| user.created_at))
                .bind(&user.auth_method)
                .bind(to_json(&sorted_aliases))
                .execute(&mut *tx)
                .await
                .map_err(|e| user_insert_error(e, &user.username, "username"))?;
                for (item, value) in &user.unique_items {
                    sqlx::query("INSERT INTO unique_items (item, value, user_id) VALUES ($1, $2, $3)")
                        .bind(item)
                        .bind(value)
                        .bind(&user.id)
                        .execute(&mut *tx)
                        .await
                        .map_err(|e| user_insert_error(e, item, "item"))?;
                }
                for (login, kind, previous) in login_names(&user.username, &aliases) {
                    sqlx::query("INSERT INTO logins (login, owner, kind, previous) VALUES ($1, $2, $3, $4)")
                        .bind(login)
                        .bind(&user.username)
                        .bind(kind)
                        .bind(previous)
                        .execute(&mut *tx)
                        .await
                        .map_err(|e| user_insert_error(e, login, kind))?;
                }
                Self::apply_in(&mut tx, &[Effect::Audit(audit.clone())]).await.map_err(db_error)?;
                tx.commit().await.map_err(db_error)?;
                audit.log();
                self.get_user(&user.id).await?.ok_or(StoreError::NotFound)
            }

            async fn find_user_by_login(&self, login: &str) -> Result<Option<User>, StoreError> {
                self.one_user($users.by_login, &normalize_login(login)).await
            }

            async fn get_user(&self, id: &str) -> Result<Option<User>, StoreError> {
                self.one_user($users.by_id, id).await
            }

            async fn create_application(&self, app: &Application, key_hash: &str) -> Result<bool, StoreError> {
                let done = sqlx::query(
                    "INSERT INTO applications (id, name, origin, callback_url, key_hash, created_at) VALUES ($1, $2, $3, $4, $5, $6) \
                     ON CONFLICT (name) DO NOTHING",
                )
                .bind(&app.id)
                .bind(&app.name)
                .bind(&app.origin)
                .bind(&app.callback_url)
                .bind(key_hash)
                .bind(app.created_at)
                .execute(&self.writer)
                .await
                .map_err(db_error)?;
                Ok(done.rows_affected() == 1)
            }

            async fn application_by_key(&self, key_hash: &str) -> Result<Option<Application>, StoreError> {
                let row = sqlx::query(concat!(select_applications!(), " WHERE key_hash = $1 AND revoked_at IS NULL"))
                    .bind(key_hash)
                    .fetch_optional(&self.pool)
                    .await
                    .map_err(db_error)?;
                row.map(|r| Self::application_from_row(&r)).transpose().map_err(db_error)
            }

            async fn application_by_name(&self, name: &str) -> Result<Option<Application>, StoreError> {
                let row = sqlx::query(concat!(select_applications!(), " WHERE name = $1"))
                    .bind(name)
                    .fetch_optional(&self.pool)
                    .await
                    .map_err(db_error)?;
                row.map(|r| Self::application_from_row(&r)).transpose().map_err(db_error)
            }

            async fn application_by_id(&self, id: &str) -> Result<Option<Application>, StoreError> {
                let row = sqlx::query(concat!(select_applications!(), " WHERE id = $1 AND revoked_at IS NULL"))
                    .bind(id)
                    .fetch_optional(&self.pool)
                    .await
                    .map_err(db_error)?;
                row.map(|r| Self::application_from_row(&r)).transpose().map_err(db_error)
            }

            async fn list_applications(&self) -> Result<Vec<Application>, StoreError> {
                let rows = sqlx::query(concat!(select_applications!(), " ORDER BY name"))
                    .fetch_all(&self.pool)
                    .await
                    .map_err(db_error)?;
                rows.iter().map(Self::application_from_row).collect::<Result<_, _>>().map_err(db_error)
            }

            async fn rotate_application_key(&self, name: &str, key_hash: &str, at: Millis) -> Result<bool, StoreError> {
                let done = sqlx::query(
                    "UPDATE applications SET key_hash = $2, key_rotated_at = $3 WHERE name = $1 AND revoked_at IS NULL",
                )
                .bind(name)
                .bind(key_hash)
                .bind(at)
                .execute(&self.writer)
                .await
                .map_err(db_error)?;
                Ok(done.rows_affected() == 1)
            }

            async fn revoke_application(&self, name: &str, at: Millis) -> Result<bool, StoreError> {
                let done = sqlx::query("UPDATE applications SET revoked_at = $2 WHERE name = $1 AND revoked_at IS NULL")
                    .bind(name)
                    .bind(at)
                    .execute(&self.writer)
                    .await
                    .map_err(db_error)?;
                Ok(done.rows_affected() == 1)
            }

            async fn enroll_app_user(&self, app_id: &str, user_id: &str, name: Option<&str>, at: Millis) -> Result<(), StoreError> {
                sqlx::query(
                    "INSERT INTO app_enrollments (app_id, user_id, name, created_at) VALUES ($1, $2, $3, $4) \
                     ON CONFLICT (app_id, user_id) DO UPDATE SET name = COALESCE(excluded.name, app_enrollments.name)",
                )
                .bind(app_id)
                .bind(user_id)
                .bind(name)
                .bind(at)
                .execute(&self.writer)
                .await
                .map_err(db_error)?;
                Ok(())
            }

            async fn app_user_enrolled(&self, app_id: &str, user_id: &str) -> Result<bool, StoreError> {
                let row = sqlx::query("SELECT 1 AS one FROM app_enrollments WHERE app_id = $1 AND user_id = $2")
                    .bind(app_id)
                    .bind(user_id)
                    .fetch_optional(&self.pool)
                    .await
                    .map_err(db_error)?;
                Ok(row.is_some())
            }

            async fn set_app_token_required(&self, app_id: &str, user_id: &str, required: bool) -> Result<(), StoreError> {
                sqlx::query("UPDATE app_enrollments SET token_required = $3 WHERE app_id = $1 AND user_id = $2")
                    .bind(app_id)
                    .bind(user_id)
                    .bind(required)
                    .execute(&self.writer)
                    .await
                    .map_err(db_error)?;
                Ok(())
            }

            async fn app_enrollment(&self, app_id: &str, user_id: &str) -> Result<Option<AppEnrollment>, StoreError> {
                let row = sqlx::query(
                    "SELECT name, token_required, created_at FROM app_enrollments WHERE app_id = $1 AND user_id = $2",
                )
                .bind(app_id)
                .bind(user_id)
                .fetch_optional(&self.pool)
                .await
                .map_err(db_error)?;
                let Some(r) = row else { return Ok(None) };
                Ok(Some(AppEnrollment {
                    name: r.try_get("name").map_err(db_error)?,
                    token_required: r.try_get("token_required").map_err(db_error)?,
                    created_at: r.try_get("created_at").map_err(db_error)?,
                }))
            }

            async fn use_app_code_step(&self, app_id: &str, user_id: &str, step: i64) -> Result<bool, StoreError> {
                let done = sqlx::query(
                    "UPDATE app_enrollments SET last_code_step = $3 \
                     WHERE app_id = $1 AND user_id = $2 AND (last_code_step IS NULL OR last_code_step < $3)",
                )
                .bind(app_id)
                .bind(user_id)
                .bind(step)
                .execute(&self.writer)
                .await
                .map_err(db_error)?;
                Ok(done.rows_affected() == 1)
            }

            async fn create_app_token(&self, t: &AppToken) -> Result<(), StoreError> {
                sqlx::query(
                    "INSERT INTO app_tokens (token_hash, app_id, user_id, approval_id, method, ip, created_at, expires_at) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
                )
                .bind(&t.token_hash)
                .bind(&t.app_id)
                .bind(&t.user_id)
                .bind(&t.approval_id)
                .bind(&t.method)
                .bind(&t.ip)
                .bind(t.created_at)
                .bind(t.expires_at)
                .execute(&self.writer)
                .await
                .map_err(db_error)?;
                Ok(())
            }

            async fn consume_app_token(&self, token_hash: &str, app_id: &str, sid: Option<&str>, now: Millis) -> Result<Option<AppToken>, StoreError> {
                // One statement: of two calls with the same token, exactly one sees a row.
                let row = sqlx::query(
                    "UPDATE app_tokens SET used_at = $3, sid = $4 \
                     WHERE token_hash = $1 AND app_id = $2 AND used_at IS NULL AND expires_at > $3 \
                     RETURNING token_hash, app_id, user_id, approval_id, method, ip, created_at, expires_at, sid",
                )
                .bind(token_hash)
                .bind(app_id)
                .bind(now)
                .bind(sid)
                .fetch_optional(&self.writer)
                .await
                .map_err(db_error)?;
                let Some(r) = row else { return Ok(None) };
                let token = AppToken {
                    token_hash: r.try_get("token_hash").map_err(db_error)?,
                    app_id: r.try_get("app_id").map_err(db_error)?,
                    user_id: r.try_get("user_id").map_err(db_error)?,
                    approval_id: r.try_get("approval_id").map_err(db_error)?,
                    method: r.try_get("method").map_err(db_error)?,
                    ip: r.try_get("ip").map_err(db_error)?,
                    created_at: r.try_get("created_at").map_err(db_error)?,
                    expires_at: r.try_get("expires_at").map_err(db_error)?,
                    sid: r.try_get("sid").map_err(db_error)?,
                };
                Ok(Some(token))
            }

            async fn record_app_approval(&self, app_id: &str, approval_id: &str, at: Millis) -> Result<(), StoreError> {
                sqlx::query("INSERT INTO app_approvals (approval_id, app_id, created_at) VALUES ($1, $2, $3)")
                    .bind(approval_id)
                    .bind(app_id)
                    .bind(at)
                    .execute(&self.writer)
                    .await
                    .map_err(db_error)?;
                Ok(())
            }

            async fn claim_app_approval_token(&self, app_id: &str, approval_id: &str, at: Millis) -> Result<bool, StoreError> {
                let done = sqlx::query(
                    "UPDATE app_approvals SET token_issued_at = $3 \
                     WHERE app_id = $1 AND approval_id = $2 AND token_issued_at IS NULL",
                )
                .bind(app_id)
                .bind(approval_id)
                .bind(at)
                .execute(&self.writer)
                .await
                .map_err(db_error)?;
                Ok(done.rows_affected() == 1)
            }

            async fn app_approvals(&self, app_id: &str, offset: i64, limit: i64) -> Result<(Vec<Approval>, i64), StoreError> {
                let rows = sqlx::query(
                    "SELECT a.id, a.user_id, a.kind, a.context, a.number, a.choices, a.nonce, a.status, a.device_id, \
                     a.created_at, a.expires_at, a.decided_at FROM app_approvals p JOIN approvals a ON a.id = p.approval_id \
                     WHERE p.app_id = $1 ORDER BY p.created_at DESC, p.approval_id LIMIT $2 OFFSET $3",
                )
                .bind(app_id)
                .bind(limit)
                .bind(offset)
                .fetch_all(&self.pool)
                .await
                .map_err(db_error)?;
                let total: i64 = sqlx::query("SELECT COUNT(*) AS n FROM app_approvals WHERE app_id = $1")
                    .bind(app_id)
                    .fetch_one(&self.pool)
                    .await
                    .and_then(|r| r.try_get("n"))
                    .map_err(db_error)?;
                let approvals = rows.iter().map(Self::approval_from_row).collect::<Result<Vec<_>, _>>()?;
                Ok((approvals, total))
            }

            async fn app_approval(&self, app_id: &str, approval_id: &str) -> Result<Option<Approval>, StoreError> {
                let row = sqlx::query(
                    "SELECT a.id, a.user_id, a.kind, a.context, a.number, a.choices, a.nonce, a.status, a.device_id, \
                     a.created_at, a.expires_at, a.decided_at FROM app_approvals p JOIN approvals a ON a.id = p.approval_id \
                     WHERE p.app_id = $1 AND p.approval_id = $2",
                )
                .bind(app_id)
                .bind(approval_id)
                .fetch_optional(&self.pool)
                .await
                .map_err(db_error)?;
                row.as_ref().map(Self::approval_from_row).transpose()
            }

            async fn unenroll_app_user(&self, app_id: &str, user_id: &str) -> Result<bool, StoreError> {
                let done = sqlx::query("DELETE FROM app_enrollments WHERE app_id = $1 AND user_id = $2")
                    .bind(app_id)
                    .bind(user_id)
                    .execute(&self.writer)
                    .await
                    .map_err(db_error)?;
                Ok(done.rows_affected() == 1)
            }

            async fn unique_item_owner(&self, item: &str, value: &str) -> Result<Option<String>, StoreError> {
                let row = sqlx::query("SELECT user_id FROM unique_items WHERE item = $1 AND value = $2")
                    .bind(item)
                    .bind(value)
                    .fetch_optional(&self.pool)
                    .await
                    .map_err(db_error)?;
                row.map(|r| r.try_get::<String, _>("user_id")).transpose().map_err(db_error)
            }

            async fn spend_captcha(&self, tag: &str, expires_at: Millis) -> Result<bool, StoreError> {
                let done = sqlx::query("INSERT INTO captcha_solutions (tag, expires_at) VALUES ($1, $2) ON CONFLICT (tag) DO NOTHING")
                    .bind(tag)
                    .bind(expires_at)
                    .execute(&self.writer)
                    .await
                    .map_err(db_error)?;
                Ok(done.rows_affected() == 1)
            }

            async fn list_users(&self) -> Result<Vec<User>, StoreError> {
                let rows = sqlx::query($users.all).fetch_all(&self.pool).await.map_err(db_error)?;
                rows.iter().map(Self::full_user_from_row).collect()
            }

            async fn users_page(&self, page: &UserPage) -> Result<FoundUsers, StoreError> {
                let limit = i64::from(page.limit);
                let (query, key) = match page.search.as_deref().map(normalize_login) {
                    None => match page.after.as_deref() {
                        None => (sqlx::query($users.first).bind(limit), "username"),
                        Some(after) => (sqlx::query($users.after).bind(after.to_owned()).bind(limit), "username"),
                    },
                    Some(prefix) => {
                        // After the cursor, or from the prefix on when the cursor lies before it.
                        let after = page.after.clone().filter(|a| *a >= prefix);
                        let query = match (after, prefix_end(&prefix)) {
                            (None, Some(end)) => sqlx::query($users.search_first).bind(prefix).bind(end).bind(limit),
                            (Some(after), Some(end)) => {
                                sqlx::query($users.search_after).bind(prefix).bind(after).bind(end).bind(limit)
                            }
                            (None, None) => sqlx::query($users.search_first_open).bind(prefix).bind(limit),
                            (Some(after), None) => sqlx::query($users.search_after_open).bind(prefix).bind(after).bind(limit),
                        };
                        (query, "page_key")
                    }
                };
                let rows = query.fetch_all(&self.search).await.map_err(db_error)?;
                let next_cursor = match rows.last() {
                    Some(last) if rows.len() == page.limit as usize => Some(last.try_get::<String, _>(key).map_err(db_error)?),
                    _ => None,
                };
                let users = rows.iter().map(Self::full_user_from_row).collect::<Result<Vec<_>, _>>()?;
                Ok(FoundUsers { users, next_cursor })
            }

            async fn reserve_attempt(&self, user_id: &str, method_id: &str, max: u32, now: Millis) -> Result<Option<i64>, StoreError> {
                let row = sqlx::query(
                    // A user deleted meanwhile has no counter to reserve on: nothing is reserved (not a
                    // foreign-key error). A throttled counter over the limit allows one check at a time once its
                    // block has passed.
                    "INSERT INTO failed_attempts (user_id, method, count, pending, pending_since) \
                     SELECT $1, $2, 0, 1, $4 WHERE EXISTS (SELECT 1 FROM users WHERE id = $1) \
                     ON CONFLICT (user_id, method) DO UPDATE SET pending = failed_attempts.pending + 1, pending_since = $4 \
                     WHERE failed_attempts.count + failed_attempts.pending <= $3 \
                     OR (failed_attempts.pending = 0 AND failed_attempts.blocked_until <= $4) \
                     RETURNING count + pending AS count",
                )
                .bind(user_id)
                .bind(method_id)
                .bind(i64::from(max))
                .bind(now)
                .fetch_optional(&self.writer)
                .await
                .map_err(db_error)?;
                row.map(|r| r.try_get::<i64, _>("count")).transpose().map_err(db_error)
            }

            async fn record_failure(&self, user_id: &str, counter: &Counter, now: Millis) -> Result<Failure, StoreError> {
                let mut tx = self.writer.begin().await.map_err(db_error)?;
                // The user's row first, as every transaction does (one lock order).
                sqlx::query("UPDATE users SET updated_at = updated_at WHERE id = $1")
                    .bind(user_id)
                    .execute(&mut *tx)
                    .await
                    .map_err(db_error)?;
                let row = sqlx::query(
                    "INSERT INTO failed_attempts (user_id, method, count, pending) \
                     SELECT $1, $2, 1, 0 WHERE EXISTS (SELECT 1 FROM users WHERE id = $1) \
                     ON CONFLICT (user_id, method) DO UPDATE SET count = failed_attempts.count + 1, \
                     pending = CASE WHEN failed_attempts.pending > 0 THEN failed_attempts.pending - 1 ELSE 0 END \
                     RETURNING count",
                )
                .bind(user_id)
                .bind(&counter.method_id)
                .fetch_optional(&mut *tx)
                .await
                .map_err(db_error)?;
                let Some(row) = row else {
                    return Ok(Failure { count: 0, locked: false, blocked_until: None });
                };
                let count: i64 = row.try_get("count").map_err(db_error)?;
                let over = count - i64::from(counter.max);
                let mut failure = Failure { count, locked: false, blocked_until: None };
                if over > 0 {
                    match &counter.over_limit {
                        OverLimit::Lock { reason } => {
                            sqlx::query(
                                "UPDATE users SET locked = TRUE, lock_reason = CASE WHEN locked THEN lock_reason ELSE $2 END, \
                                 locked_at = CASE WHEN locked THEN locked_at ELSE $3 END, updated_at = $3 WHERE id = $1",
                            )
                            .bind(user_id)
                            .bind(reason)
                            .bind(now)
                            .execute(&mut *tx)
                            .await
                            .map_err(db_error)?;
                            failure.locked = true;
                        }
                        OverLimit::Throttle(throttle) => {
                            let delay = i64::try_from(throttle.delay_ms(over)).unwrap_or(i64::MAX);
                            let until = now.saturating_add(delay);
                            sqlx::query("UPDATE failed_attempts SET blocked_until = $3 WHERE user_id = $1 AND method = $2")
                                .bind(user_id)
                                .bind(&counter.method_id)
                                .bind(until)
                                .execute(&mut *tx)
                                .await
                                .map_err(db_error)?;
                            failure.blocked_until = Some(until);
                        }
                    }
                }
                tx.commit().await.map_err(db_error)?;
                Ok(failure)
            }

            async fn purge(&self, what: Spent, batch: i64) -> Result<u64, StoreError> {
                // Each kind: one statement over at most `batch` rows chosen by the same condition, so no table
                // is locked for long; a row another node removed meanwhile is simply not there any more.
                let (sql, a, b) = match what {
                    Spent::FlowSessions { expired_before, idle_before } => {
                        // Two statements, each a range of one index in its order (`expires_at < $1 OR last_seen_at
                        // < $2` would be a scan on PostgreSQL, over the dead rows of earlier batches too).
                        let mut purged = 0u64;
                        for (column, before) in [("expires_at", expired_before), ("last_seen_at", idle_before)] {
                            let left = batch - i64::try_from(purged).unwrap_or(batch);
                            if left <= 0 {
                                break;
                            }
                            purged += sqlx::query(sqlx::AssertSqlSafe(format!(
                                "DELETE FROM flow_sessions WHERE id IN (SELECT id FROM flow_sessions \
                                 WHERE {column} < $1 ORDER BY {column} LIMIT $2)"
                            )))
                            .bind(before)
                            .bind(left)
                            .execute(&self.writer)
                            .await
                            .map_err(db_error)?
                            .rows_affected();
                        }
                        if purged > 0 {
                            self.after_purge().await;
                        }
                        return Ok(purged);
                    }
                    Spent::RateLimitWindows { before } => (
                        "DELETE FROM rate_limits WHERE key IN (SELECT key FROM rate_limits \
                         WHERE window_start < $1 AND $2 = $2 LIMIT $3)",
                        before,
                        0,
                    ),
                    Spent::LinkTokens { before } => (
                        "DELETE FROM continuation_tokens WHERE token_hash IN (SELECT token_hash FROM continuation_tokens \
                         WHERE expires_at < $1 OR (used_at IS NOT NULL AND used_at < $2) LIMIT $3)",
                        before,
                        before,
                    ),
                    Spent::Reservations { before } => (
                        "UPDATE failed_attempts SET pending = 0 WHERE (user_id, method) IN \
                         (SELECT user_id, method FROM failed_attempts WHERE pending > 0 AND pending_since < $1 \
                          AND $2 = $2 LIMIT $3)",
                        before,
                        0,
                    ),
                    Spent::Messages { before } => (
                        "DELETE FROM outbox WHERE id IN (SELECT id FROM outbox \
                         WHERE status <> 'pending' AND finished_at < $1 AND $2 = $2 LIMIT $3)",
                        before,
                        0,
                    ),
                    Spent::Approvals { before } => (
                        "DELETE FROM approvals WHERE id IN (SELECT id FROM approvals \
                         WHERE expires_at < $1 OR (decided_at IS NOT NULL AND decided_at < $2) LIMIT $3)",
                        before,
                        before,
                    ),
                    Spent::Activations { before } => (
                        "DELETE FROM activations WHERE code_hash IN (SELECT code_hash FROM activations \
                         WHERE expires_at < $1 OR (used_at IS NOT NULL AND used_at < $2) LIMIT $3)",
                        before,
                        before,
                    ),
                    Spent::AuthSessions { before } => (
                        "DELETE FROM auth_sessions WHERE id IN (SELECT id FROM auth_sessions \
                         WHERE expires_at < $1 OR (ended_at IS NOT NULL AND ended_at < $2) LIMIT $3)",
                        before,
                        before,
                    ),
                    Spent::AppTokens { before } => (
                        "DELETE FROM app_tokens WHERE token_hash IN (SELECT token_hash FROM app_tokens \
                         WHERE expires_at < $1 AND $2 = $2 LIMIT $3)",
                        before,
                        0,
                    ),
                    Spent::CaptchaSolutions { before } => (
                        "DELETE FROM captcha_solutions WHERE tag IN (SELECT tag FROM captcha_solutions \
                         WHERE expires_at < $1 AND $2 = $2 LIMIT $3)",
                        before,
                        0,
                    ),
                    Spent::AuditEvents { before } => (
                        "DELETE FROM audit_events WHERE id IN (SELECT id FROM audit_events \
                         WHERE at < $1 AND $2 = $2 ORDER BY at LIMIT $3)",
                        before,
                        0,
                    ),
                };
                let removed = sqlx::query(sql)
                    .bind(a)
                    .bind(b)
                    .bind(batch)
                    .execute(&self.writer)
                    .await
                    .map(|r| r.rows_affected())
                    .map_err(db_error)?;
                if removed > 0 {
                    self.after_purge().await;
                }
                Ok(removed)
            }

            async fn take_lease(&self, task: &str, holder: &str, now: Millis, until: Millis) -> Result<bool, StoreError> {
                let row = sqlx::query(
                    "INSERT INTO housekeeping_leases (task, holder, lease_until) VALUES ($1, $2, $4) \
                     ON CONFLICT (task) DO UPDATE SET holder = $2, lease_until = $4 \
                     WHERE housekeeping_leases.lease_until <= $3 OR housekeeping_leases.holder = $2 \
                     RETURNING holder",
                )
                .bind(task)
                .bind(holder)
                .bind(now)
                .bind(until)
                .fetch_optional(&self.writer)
                .await
                .map_err(db_error)?;
                Ok(row.is_some())
            }

            async fn release_leases(&self, holder: &str) -> Result<u64, StoreError> {
                sqlx::query("DELETE FROM housekeeping_leases WHERE holder = $1")
                    .bind(holder)
                    .execute(&self.writer)
                    .await
                    .map(|r| r.rows_affected())
                    .map_err(db_error)
            }

            async fn hit_rate_limit(&self, key: &str, window_ms: i64, limit: u32, now: Millis) -> Result<Option<i64>, StoreError> {
                let row = sqlx::query(
                    "INSERT INTO rate_limits (key, window_start, count) VALUES ($1, $2, 1) \
                     ON CONFLICT (key) DO UPDATE SET \
                     count = CASE WHEN rate_limits.window_start <= $2 - $3 THEN 1 ELSE rate_limits.count + 1 END, \
                     window_start = CASE WHEN rate_limits.window_start <= $2 - $3 THEN $2 ELSE rate_limits.window_start END \
                     RETURNING window_start, count",
                )
                .bind(key)
                .bind(now)
                .bind(window_ms)
                .fetch_one(&self.writer)
                .await
                .map_err(db_error)?;
                let start: i64 = row.try_get("window_start").map_err(db_error)?;
                let count: i64 = row.try_get("count").map_err(db_error)?;
                Ok((count > i64::from(limit)).then(|| (start + window_ms - now).max(1)))
            }

            async fn apply(&self, effects: &[Effect]) -> Result<(), StoreError> {
                let mut tx = self.writer.begin().await.map_err(db_error)?;
                Self::apply_in(&mut tx, effects).await.map_err(db_error)?;
                tx.commit().await.map_err(db_error)?;
                log_audit(effects);
                self.announce(approval_events(effects)).await;
                Ok(())
            }

            async fn create_flow_session(&self, s: &NewFlowSession, effects: &[Effect]) -> Result<bool, StoreError> {
                let start = FlowStart { session: s.clone(), effects: effects.to_vec() };
                if !self.flow_starts.submit(start).await? {
                    return Ok(false);
                }
                log_audit(effects);
                self.announce(approval_events(effects)).await;
                Ok(true)
            }

            async fn acquire_flow_session(&self, token_hash: &str, now: Millis, lease_until: Millis) -> Result<Acquired, StoreError> {
                let row = sqlx::query(sqlx::AssertSqlSafe(format!(
                    "UPDATE flow_sessions SET lease_until = $3 \
                     WHERE token_hash = $1 AND (lease_until IS NULL OR lease_until < $2) RETURNING {SESSION_COLUMNS}"
                )))
                .bind(token_hash)
                .bind(now)
                .bind(lease_until)
                .fetch_optional(&self.writer)
                .await
                .map_err(db_error)?;
                let Some(row) = row else {
                    let exists = sqlx::query("SELECT 1 FROM flow_sessions WHERE token_hash = $1")
                        .bind(token_hash)
                        .fetch_optional(&self.writer)
                        .await
                        .map_err(db_error)?;
                    return Ok(if exists.is_some() { Acquired::Busy } else { Acquired::NotFound });
                };
                let kind: String = row.try_get("kind").map_err(db_error)?;
                let status: String = row.try_get("status").map_err(db_error)?;
                let state: String = row.try_get("state").map_err(db_error)?;
                Ok(Acquired::Session(Box::new(FlowSessionRecord {
                    id: row.try_get("id").map_err(db_error)?,
                    kind: FlowKind::parse(&kind).ok_or_else(|| StoreError::Other(format!("unknown flow kind `{kind}`")))?,
                    flow_id: row.try_get("flow_id").map_err(db_error)?,
                    state: serde_json::from_str(&state).map_err(|e| StoreError::Other(format!("corrupt flow state: {e}")))?,
                    status: SessionStatus::parse(&status).ok_or_else(|| StoreError::Other(format!("unknown status `{status}`")))?,
                    version: row.try_get("version").map_err(db_error)?,
                    created_at: row.try_get("created_at").map_err(db_error)?,
                    last_seen_at: row.try_get("last_seen_at").map_err(db_error)?,
                    expires_at: row.try_get("expires_at").map_err(db_error)?,
                })))
            }

            async fn commit_flow_session(&self, u: &FlowSessionUpdate, effects: &[Effect]) -> Result<bool, StoreError> {
                let mut tx = self.writer.begin().await.map_err(db_error)?;
                let updated = sqlx::query(
                    "UPDATE flow_sessions SET state = $3, status = $4, version = version + 1, lease_until = NULL, last_seen_at = $5, \
                     token_hash = COALESCE($6, token_hash) WHERE id = $1 AND version = $2",
                )
                .bind(&u.id)
                .bind(u.version)
                .bind(u.state.to_string())
                .bind(u.status.as_str())
                .bind(u.last_seen_at)
                .bind(u.token_hash.as_deref())
                .execute(&mut *tx)
                .await
                .map_err(db_error)?;
                if updated.rows_affected() != 1 {
                    return Ok(false);
                }
                Self::apply_in(&mut tx, effects).await.map_err(db_error)?;
                tx.commit().await.map_err(db_error)?;
                log_audit(effects);
                self.announce(approval_events(effects)).await;
                Ok(true)
            }

            async fn release_flow_session(&self, id: &str, version: i64) -> Result<(), StoreError> {
                sqlx::query("UPDATE flow_sessions SET lease_until = NULL WHERE id = $1 AND version = $2")
                    .bind(id)
                    .bind(version)
                    .execute(&self.writer)
                    .await
                    .map(|_| ())
                    .map_err(db_error)
            }

            async fn claim_outbox(&self, now: Millis, claim_until: Millis, limit: i64) -> Result<Vec<ClaimedMessage>, StoreError> {
                // The outer conditions repeat the inner ones: a row another node claimed meanwhile is skipped.
                let claim = sqlx::query($claim_sql).bind(now).bind(claim_until).bind(limit);
                let setting: Option<&str> = $claim_setting;
                let rows = match setting {
                    None => claim.fetch_all(&self.writer).await.map_err(db_error)?,
                    Some(setting) => {
                        let mut tx = self.writer.begin().await.map_err(db_error)?;
                        sqlx::raw_sql(setting).execute(&mut *tx).await.map_err(db_error)?;
                        let rows = claim.fetch_all(&mut *tx).await.map_err(db_error)?;
                        tx.commit().await.map_err(db_error)?;
                        rows
                    }
                };
                rows.iter()
                    .map(|row| {
                        let channel: String = row.try_get("channel").map_err(db_error)?;
                        Ok(ClaimedMessage {
                            message: OutboxMessage {
                                id: row.try_get("id").map_err(db_error)?,
                                channel: Channel::parse(&channel)
                                    .ok_or_else(|| StoreError::Other(format!("unknown channel `{channel}`")))?,
                                sealed: row.try_get("sealed").map_err(db_error)?,
                                created_at: row.try_get("created_at").map_err(db_error)?,
                                claimed_until: Some(claim_until),
                            },
                            attempts: row.try_get("attempts").map_err(db_error)?,
                        })
                    })
                    .collect()
            }

            async fn mark_delivered(&self, ids: &[String], at: Millis) -> Result<(), StoreError> {
                for chunk in ids.chunks(IDS_PER_STATEMENT) {
                    let mut query = sqlx::QueryBuilder::<$db>::new(
                        "UPDATE outbox SET status = 'delivered', sealed = '', claimed_until = NULL, last_error = NULL, finished_at = ",
                    );
                    query.push_bind(at).push(" WHERE id IN (");
                    Self::push_ids(&mut query, chunk, ")");
                    query.build().execute(&self.writer).await.map_err(db_error)?;
                }
                Ok(())
            }

            async fn release_claims(&self, ids: &[String]) -> Result<(), StoreError> {
                for chunk in ids.chunks(IDS_PER_STATEMENT) {
                    let mut query = sqlx::QueryBuilder::<$db>::new(
                        "UPDATE outbox SET claimed_until = NULL, attempts = CASE WHEN attempts > 0 THEN attempts - 1 ELSE 0 END \
                         WHERE status = 'pending' AND claimed_until IS NOT NULL AND id IN (",
                    );
                    Self::push_ids(&mut query, chunk, ")");
                    query.build().execute(&self.writer).await.map_err(db_error)?;
                }
                Ok(())
            }

            async fn mark_retry(&self, id: &str, error: &str, next_attempt_at: Millis) -> Result<(), StoreError> {
                sqlx::query("UPDATE outbox SET next_attempt_at = $3, last_error = $2, claimed_until = NULL WHERE id = $1")
                    .bind(id)
                    .bind(error)
                    .bind(next_attempt_at)
                    .execute(&self.writer)
                    .await
                    .map(|_| ())
                    .map_err(db_error)
            }

            async fn mark_abandoned(&self, id: &str, error: &str, at: Millis) -> Result<(), StoreError> {
                sqlx::query(
                    "UPDATE outbox SET status = 'abandoned', sealed = '', last_error = $2, finished_at = $3, claimed_until = NULL \
                     WHERE id = $1",
                )
                .bind(id)
                .bind(error)
                .bind(at)
                .execute(&self.writer)
                .await
                .map(|_| ())
                .map_err(db_error)
            }

            async fn outbox_backlog(&self) -> Result<(i64, Option<Millis>), StoreError> {
                let row = sqlx::query("SELECT COUNT(*) AS n, MIN(created_at) AS oldest FROM outbox WHERE status = 'pending'")
                    .fetch_one(&self.pool)
                    .await
                    .map_err(db_error)?;
                Ok((row.try_get::<i64, _>("n").map_err(db_error)?, row.try_get::<Option<i64>, _>("oldest").map_err(db_error)?))
            }

            async fn database_time(&self) -> Result<Millis, StoreError> {
                let row = sqlx::query($now_sql).fetch_one(&self.pool).await.map_err(db_error)?;
                row.try_get::<i64, _>("now").map_err(db_error)
            }

            async fn register_key(&self, fingerprint: &str, now: Millis) -> Result<String, StoreError> {
                sqlx::query(
                    "INSERT INTO key_fingerprint (id, fingerprint, registered_at) VALUES (1, $1, $2) \
                     ON CONFLICT (id) DO NOTHING",
                )
                .bind(fingerprint)
                .bind(now)
                .execute(&self.writer)
                .await
                .map_err(db_error)?;
                Ok(self.registered_key().await?.unwrap_or_default())
            }

            async fn applied_migrations(&self) -> Result<Vec<i64>, StoreError> {
                // A database never migrated has no table yet: nothing applied.
                match sqlx::query("SELECT version FROM _sqlx_migrations WHERE success ORDER BY version")
                    .fetch_all(&self.pool)
                    .await
                {
                    Ok(rows) => rows.iter().map(|r| r.try_get::<i64, _>("version")).collect::<Result<_, _>>().map_err(db_error),
                    Err(sqlx::Error::Database(_)) => Ok(Vec::new()),
                    Err(e) => Err(db_error(e)),
                }
            }

            async fn registered_key(&self) -> Result<Option<String>, StoreError> {
                let row = sqlx::query("SELECT fingerprint FROM key_fingerprint WHERE id = 1")
                    .fetch_optional(&self.pool)
                    .await
                    .map_err(db_error)?;
                row.map(|r| r.try_get::<String, _>("fingerprint")).transpose().map_err(db_error)
            }

            fn pool_stats(&self) -> (u32, usize) {
                (self.pool.size(), self.pool.num_idle())
            }

            async fn pending_outbox(&self) -> Result<i64, StoreError> {
                let row = sqlx::query("SELECT COUNT(*) AS n FROM outbox WHERE status = 'pending'")
                    .fetch_one(&self.pool)
                    .await
                    .map_err(db_error)?;
                row.try_get::<i64, _>("n").map_err(db_error)
            }

            async fn touch_auth_session(
                &self,
                token_hash: &str,
                now: Millis,
                idle_before: Millis,
            ) -> Result<Option<AuthSessionRecord>, StoreError> {
                let row = sqlx::query(
                    "UPDATE auth_sessions SET last_seen_at = $2 \
                     WHERE token_hash = $1 AND ended_at IS NULL AND expires_at > $2 AND last_seen_at >= $3 \
                     RETURNING id, user_id, factors, created_at, COALESCE(authenticated_at, created_at) AS authenticated_at, last_seen_at, expires_at",
                )
                .bind(token_hash)
                .bind(now)
                .bind(idle_before)
                .fetch_optional(&self.writer)
                .await
                .map_err(db_error)?;
                let Some(row) = row else { return Ok(None) };
                let factors: String = row.try_get("factors").map_err(db_error)?;
                Ok(Some(AuthSessionRecord {
                    id: row.try_get("id").map_err(db_error)?,
                    user_id: row.try_get("user_id").map_err(db_error)?,
                    factors: json_list(&factors)?,
                    created_at: row.try_get("created_at").map_err(db_error)?,
                    authenticated_at: row.try_get("authenticated_at").map_err(db_error)?,
                    last_seen_at: row.try_get("last_seen_at").map_err(db_error)?,
                    expires_at: row.try_get("expires_at").map_err(db_error)?,
                }))
            }

            async fn enrolled(&self, user_id: &str) -> Result<Enrolled, StoreError> {
                let row = sqlx::query(
                    "SELECT EXISTS (SELECT 1 FROM totp_credentials WHERE user_id = $1 AND confirmed) AS totp, \
                     EXISTS (SELECT 1 FROM devices WHERE user_id = $1) AS device",
                )
                .bind(user_id)
                .fetch_one(&self.pool)
                .await
                .map_err(db_error)?;
                Ok(Enrolled { totp: row.try_get("totp").map_err(db_error)?, device: row.try_get("device").map_err(db_error)? })
            }

            async fn get_totp(&self, user_id: &str) -> Result<Option<TotpCredential>, StoreError> {
                let row = sqlx::query(
                    "SELECT sealed_secret, confirmed, last_step, created_at FROM totp_credentials WHERE user_id = $1",
                )
                .bind(user_id)
                .fetch_optional(&self.pool)
                .await
                .map_err(db_error)?;
                row.map(|r| {
                    Ok(TotpCredential {
                        sealed_secret: r.try_get("sealed_secret").map_err(db_error)?,
                        confirmed: r.try_get("confirmed").map_err(db_error)?,
                        last_step: r.try_get("last_step").map_err(db_error)?,
                        created_at: r.try_get("created_at").map_err(db_error)?,
                    })
                })
                .transpose()
            }

            async fn totp_states(&self, user_ids: &[String]) -> Result<BTreeMap<String, bool>, StoreError> {
                let mut states = BTreeMap::new();
                for chunk in user_ids.chunks(IDS_PER_STATEMENT) {
                    let mut query = sqlx::QueryBuilder::<$db>::new("SELECT user_id, confirmed FROM totp_credentials WHERE user_id IN (");
                    Self::push_ids(&mut query, chunk, ")");
                    for row in query.build().fetch_all(&self.pool).await.map_err(db_error)? {
                        states.insert(row.try_get("user_id").map_err(db_error)?, row.try_get("confirmed").map_err(db_error)?);
                    }
                }
                Ok(states)
            }

            async fn consume_totp_step(&self, user_id: &str, step: i64) -> Result<bool, StoreError> {
                sqlx::query("UPDATE totp_credentials SET last_step = $2 WHERE user_id = $1 AND last_step < $2")
                    .bind(user_id)
                    .bind(step)
                    .execute(&self.writer)
                    .await
                    .map(|r| r.rows_affected() == 1)
                    .map_err(db_error)
            }

            async fn get_secret_answers(&self, user_id: &str) -> Result<Vec<(String, String)>, StoreError> {
                let rows = sqlx::query(
                    "SELECT question, answer_hash FROM secret_answers WHERE user_id = $1 ORDER BY question",
                )
                .bind(user_id)
                .fetch_all(&self.pool)
                .await
                .map_err(db_error)?;
                rows.iter()
                    .map(|r| Ok((r.try_get::<String, _>("question")?, r.try_get::<String, _>("answer_hash")?)))
                    .collect::<Result<_, sqlx::Error>>()
                    .map_err(db_error)
            }

            async fn consume_continuation_token(
                &self,
                token_hash: &str,
                flow_id: &str,
                now: Millis,
            ) -> Result<Option<String>, StoreError> {
                let row = sqlx::query(
                    "UPDATE continuation_tokens SET used_at = $3 \
                     WHERE token_hash = $1 AND flow_id = $2 AND used_at IS NULL AND expires_at > $3 RETURNING user_id",
                )
                .bind(token_hash)
                .bind(flow_id)
                .bind(now)
                .fetch_optional(&self.writer)
                .await
                .map_err(db_error)?;
                row.map(|r| r.try_get::<String, _>("user_id")).transpose().map_err(db_error)
            }

            async fn create_admin_token(&self, name: &str, token_hash: &str, at: Millis) -> Result<bool, StoreError> {
                let result = sqlx::query(
                    "INSERT INTO admin_tokens (name, token_hash, created_at) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING",
                )
                .bind(name)
                .bind(token_hash)
                .bind(at)
                .execute(&self.writer)
                .await
                .map_err(db_error)?;
                Ok(result.rows_affected() == 1)
            }

            async fn use_admin_token(&self, token_hash: &str, at: Millis) -> Result<Option<String>, StoreError> {
                let row = sqlx::query("SELECT name, last_used_at FROM admin_tokens WHERE token_hash = $1")
                    .bind(token_hash)
                    .fetch_optional(&self.pool)
                    .await
                    .map_err(db_error)?;
                let Some(row) = row else { return Ok(None) };
                let name: String = row.try_get("name").map_err(db_error)?;
                let last_used: Option<Millis> = row.try_get("last_used_at").map_err(db_error)?;
                // A write per admin request would make admin reads wait for the writer, and on SQLite every
                // commit empties every reader's page cache: a page of users at ten million users then re-reads
                // its B-trees' inner pages from the file each time. "Last used" is kept to the minute instead.
                if last_used.is_none_or(|used| at.saturating_sub(used) >= ADMIN_TOKEN_USE_PRECISION_MS) {
                    sqlx::query(
                        "UPDATE admin_tokens SET last_used_at = $2 WHERE token_hash = $1 \
                         AND (last_used_at IS NULL OR last_used_at < $2)",
                    )
                    .bind(token_hash)
                    .bind(at)
                    .execute(&self.writer)
                    .await
                    .map_err(db_error)?;
                }
                Ok(Some(name))
            }

            async fn delete_admin_token(&self, name: &str) -> Result<bool, StoreError> {
                sqlx::query("DELETE FROM admin_tokens WHERE name = $1")
                    .bind(name)
                    .execute(&self.writer)
                    .await
                    .map(|r| r.rows_affected() == 1)
                    .map_err(db_error)
            }

            async fn list_admin_tokens(&self) -> Result<Vec<(String, Millis, Option<Millis>)>, StoreError> {
                let rows = sqlx::query("SELECT name, created_at, last_used_at FROM admin_tokens ORDER BY name")
                    .fetch_all(&self.pool)
                    .await
                    .map_err(db_error)?;
                rows.iter()
                    .map(|r| {
                        Ok((
                            r.try_get("name").map_err(db_error)?,
                            r.try_get("created_at").map_err(db_error)?,
                            r.try_get("last_used_at").map_err(db_error)?,
                        ))
                    })
                    .collect()
            }

            async fn activate_device(&self, code_hash: &str, now: Millis, device: &Device) -> Result<Option<String>, StoreError> {
                let mut tx = self.writer.begin().await.map_err(db_error)?;
                let row = sqlx::query(
                    "UPDATE activations SET used_at = $2 WHERE code_hash = $1 AND used_at IS NULL AND expires_at > $2 RETURNING user_id",
                )
                .bind(code_hash)
                .bind(now)
                .fetch_optional(&mut *tx)
                .await
                .map_err(db_error)?;
                let Some(row) = row else { return Ok(None) };
                let user_id: String = row.try_get("user_id").map_err(db_error)?;
                sqlx::query(
                    "INSERT INTO devices (id, user_id, public_key, sealed_offline, display_name, created_at) VALUES ($1, $2, $3, $4, $5, $6)",
                )
                .bind(&device.id)
                .bind(&user_id)
                .bind(&device.public_key)
                .bind(&device.sealed_offline)
                .bind(&device.display_name)
                .bind(device.created_at)
                .execute(&mut *tx)
                .await
                .map_err(db_error)?;
                tx.commit().await.map_err(db_error)?;
                Ok(Some(user_id))
            }

            async fn list_devices(&self, user_id: &str) -> Result<Vec<Device>, StoreError> {
                let rows = sqlx::query(
                    "SELECT id, user_id, public_key, sealed_offline, display_name, created_at, last_seen_at FROM devices \
                     WHERE user_id = $1 ORDER BY created_at, id",
                )
                .bind(user_id)
                .fetch_all(&self.pool)
                .await
                .map_err(db_error)?;
                rows.iter().map(|r| Self::device_from_row(r).map_err(db_error)).collect()
            }

            async fn get_device(&self, id: &str) -> Result<Option<Device>, StoreError> {
                let row = sqlx::query(
                    "SELECT id, user_id, public_key, sealed_offline, display_name, created_at, last_seen_at FROM devices WHERE id = $1",
                )
                .bind(id)
                .fetch_optional(&self.pool)
                .await
                .map_err(db_error)?;
                row.map(|r| Self::device_from_row(&r).map_err(db_error)).transpose()
            }

            async fn touch_device(&self, id: &str, now: Millis) -> Result<(), StoreError> {
                sqlx::query("UPDATE devices SET last_seen_at = $2 WHERE id = $1")
                    .bind(id)
                    .bind(now)
                    .execute(&self.writer)
                    .await
                    .map(|_| ())
                    .map_err(db_error)
            }

            async fn get_approval(&self, id: &str) -> Result<Option<Approval>, StoreError> {
                let row = sqlx::query(
                    "SELECT id, user_id, kind, context, number, choices, nonce, status, device_id, created_at, expires_at, decided_at \
                     FROM approvals WHERE id = $1",
                )
                .bind(id)
                .fetch_optional(&self.pool)
                .await
                .map_err(db_error)?;
                row.map(|r| Self::approval_from_row(&r)).transpose()
            }

            async fn pending_approvals(&self, user_id: &str, now: Millis) -> Result<Vec<Approval>, StoreError> {
                let rows = sqlx::query(
                    "SELECT id, user_id, kind, context, number, choices, nonce, status, device_id, created_at, expires_at, decided_at \
                     FROM approvals WHERE user_id = $1 AND status = 'pending' AND expires_at > $2 ORDER BY created_at, id",
                )
                .bind(user_id)
                .bind(now)
                .fetch_all(&self.pool)
                .await
                .map_err(db_error)?;
                rows.iter().map(Self::approval_from_row).collect()
            }

            async fn self_unlock(
                &self,
                user_id: &str,
                allowed_reasons: &[String],
                max: Option<u32>,
                counters: &[String],
                at: Millis,
            ) -> Result<SelfUnlock, StoreError> {
                let mut tx = self.writer.begin().await.map_err(db_error)?;
                // One statement checks the lock, its reason and the limit, and counts the unlock.
                let placeholders: Vec<String> = (0..allowed_reasons.len()).map(|i| format!("${}", i + 4)).collect();
                let reasons = if placeholders.is_empty() { "NULL".to_owned() } else { placeholders.join(", ") };
                let sql = format!(
                    "UPDATE users SET locked = FALSE, lock_reason = NULL, locked_at = NULL, unlock_count = unlock_count + 1, \
                     updated_at = $2 WHERE id = $1 AND locked = TRUE AND lock_reason IN ({reasons}) \
                     AND ($3 < 0 OR unlock_count < $3)"
                );
                let mut query = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(user_id).bind(at).bind(max.map_or(-1, i64::from));
                for reason in allowed_reasons {
                    query = query.bind(reason);
                }
                let unlocked = query.execute(&mut *tx).await.map_err(db_error)?.rows_affected() == 1;
                if unlocked {
                    for method in counters {
                        sqlx::query("DELETE FROM failed_attempts WHERE user_id = $1 AND method = $2")
                            .bind(user_id)
                            .bind(method)
                            .execute(&mut *tx)
                            .await
                            .map_err(db_error)?;
                    }
                }
                tx.commit().await.map_err(db_error)?;
                if unlocked {
                    return Ok(SelfUnlock::Unlocked);
                }
                let user = self.get_user(user_id).await?.ok_or(StoreError::NotFound)?;
                Ok(if !user.locked {
                    SelfUnlock::NotLocked
                } else if !user.lock_reason.as_ref().is_some_and(|r| allowed_reasons.contains(r)) {
                    SelfUnlock::NotAllowed
                } else {
                    SelfUnlock::LimitReached
                })
            }

            async fn decide_approval(&self, id: &str, device_id: &str, approve: bool, now: Millis) -> Result<bool, StoreError> {
                let status = if approve { "approved" } else { "denied" };
                let decided = sqlx::query(
                    "UPDATE approvals SET status = $3, device_id = $2, decided_at = $4 \
                     WHERE id = $1 AND status = 'pending' AND expires_at > $4",
                )
                .bind(id)
                .bind(device_id)
                .bind(status)
                .bind(now)
                .execute(&self.writer)
                .await
                .map(|r| r.rows_affected() == 1)
                .map_err(db_error)?;
                if decided {
                    self.announce(vec![format!("decided:{id}")]).await;
                }
                Ok(decided)
            }

            fn approval_events(&self) -> tokio::sync::broadcast::Receiver<String> {
                self.events.subscribe()
            }

            async fn query_audit(&self, query: &AuditQuery) -> Result<Vec<AuditEvent>, StoreError> {
                // One statement for every filter: an absent filter is a NULL parameter that matches everything.
                const FILTERS: &str = "FROM audit_events \
                     WHERE (CAST($1 AS TEXT) IS NULL OR user_id = $1 OR username = $1) \
                       AND (CAST($2 AS TEXT) IS NULL OR event = $2) \
                       AND (CAST($3 AS TEXT) IS NULL OR substr(event, 1, length($3)) = $3) \
                       AND (CAST($4 AS TEXT) IS NULL OR outcome = $4) \
                       AND (CAST($5 AS BIGINT) IS NULL OR at >= $5) \
                       AND (CAST($6 AS BIGINT) IS NULL OR at < $6)";
                let sql = match query.order {
                    AuditOrder::NewestFirst => format!(
                        "SELECT id, at, event, actor, user_id, username, flow_id, session_id, ip, outcome, details {FILTERS} \
                         AND (CAST($7 AS BIGINT) IS NULL OR at < $7 OR (at = $7 AND id < $8)) \
                         ORDER BY at DESC, id DESC LIMIT $9"
                    ),
                    AuditOrder::OldestFirst => format!(
                        "SELECT id, at, event, actor, user_id, username, flow_id, session_id, ip, outcome, details {FILTERS} \
                         AND (CAST($7 AS BIGINT) IS NULL OR at > $7 OR (at = $7 AND id > $8)) \
                         ORDER BY at ASC, id ASC LIMIT $9"
                    ),
                };
                let (exact, prefix) = query.action_parts();
                let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
                    .bind(query.user.as_deref())
                    .bind(exact)
                    .bind(prefix)
                    .bind(query.outcome.as_deref())
                    .bind(query.from)
                    .bind(query.to)
                    .bind(query.after.as_ref().map(|c| c.at))
                    .bind(query.after.as_ref().map_or("", |c| c.id.as_str()))
                    .bind(i64::from(query.limit()))
                    .fetch_all(&self.pool)
                    .await
                    .map_err(db_error)?;
                rows.iter()
                    .map(|row| {
                        let details: String = row.try_get("details").map_err(db_error)?;
                        Ok(AuditEvent {
                            id: row.try_get("id").map_err(db_error)?,
                            at: row.try_get("at").map_err(db_error)?,
                            event: row.try_get("event").map_err(db_error)?,
                            actor: row.try_get("actor").map_err(db_error)?,
                            user_id: row.try_get("user_id").map_err(db_error)?,
                            username: row.try_get("username").map_err(db_error)?,
                            flow_id: row.try_get("flow_id").map_err(db_error)?,
                            session_id: row.try_get("session_id").map_err(db_error)?,
                            ip: row.try_get("ip").map_err(db_error)?,
                            outcome: row.try_get("outcome").map_err(db_error)?,
                            details: serde_json::from_str(&details).unwrap_or(serde_json::Value::Null),
                        })
                    })
                    .collect()
            }
        }
    };
}

/// Audit events are written with the change they describe and logged once the transaction committed.
fn log_audit(effects: &[Effect]) {
    for effect in effects {
        if let Effect::Audit(ev) = effect {
            ev.log();
        }
        if let Effect::Enqueue(m) = effect {
            metrics::counter!("gatehouse_messages_total", "channel" => m.channel.as_str(), "result" => "queued")
                .increment(1);
        }
    }
}

/// Claims up to `$3` due outbox rows. SQLite has one writer at a time; PostgreSQL nodes skip rows another node is
/// claiming right now (`SKIP LOCKED`) instead of waiting for them. The choice runs once, materialized: written as
/// `id IN (SELECT … LIMIT …)`, PostgreSQL's generic plan under stale statistics became a semi join that ran the
/// locking subquery again for every pending row — a second a claim with 5,000 queued, and far more rows claimed
/// than asked for.
macro_rules! claim_outbox_sql {
    ($lock:literal) => {
        concat!(
            "WITH picked AS MATERIALIZED (SELECT id FROM outbox WHERE status = 'pending' AND next_attempt_at <= $1 \
             AND (claimed_until IS NULL OR claimed_until < $1) ORDER BY next_attempt_at LIMIT $3",
            $lock,
            ") UPDATE outbox SET claimed_until = $2, attempts = attempts + 1 \
             WHERE id IN (SELECT id FROM picked) AND status = 'pending' AND (claimed_until IS NULL OR claimed_until < $1) \
             RETURNING id, channel, sealed, created_at, attempts"
        )
    };
}

/// The claim must walk `outbox_due` in order and stop after `limit` rows. Under a burst PostgreSQL's statistics
/// still say that few rows are pending (most are delivered, or the table was never analyzed), and it picks a bitmap
/// scan of every pending row and a sort instead: 10 ms a claim with 15,000 queued, while it stays under 2 ms this
/// way. With sorting priced out, only the ordered index scan is left.
const PG_CLAIM_SETTING: &str = "SET LOCAL enable_sort = off";

store_impl!(
    SqliteStore,
    sqlx::Sqlite,
    "SELECT CAST(ROUND((julianday('now') - 2440587.5) * 86400000) AS INTEGER) AS now",
    claim_outbox_sql!(""),
    None,
    SQLITE_USERS
);
store_impl!(
    PgStore,
    sqlx::Postgres,
    "SELECT CAST(EXTRACT(EPOCH FROM clock_timestamp()) * 1000 AS BIGINT) AS now",
    claim_outbox_sql!(" FOR UPDATE SKIP LOCKED"),
    Some(PG_CLAIM_SETTING),
    PG_USERS
);

#[cfg(test)]
mod lock_pass_tests {
    use super::LockPass;
    use gatehouse_core::ports::Effect;

    fn temp(user: &str, until: Option<i64>) -> Effect {
        Effect::SetTemporaryLock { user_id: user.into(), until }
    }

    fn reset(user: &str) -> Effect {
        Effect::ResetUnlockCount { user_id: user.into() }
    }

    /// A login's clears move into the lock pass of their own user; a temporary lock set in the same batch keeps
    /// the clear where it was.
    #[test]
    fn what_the_lock_pass_writes() {
        let both = LockPass { clears_temporary_lock: true, resets_unlock_count: true };
        assert_eq!(LockPass::of("u1", &[temp("u1", None), reset("u1")]), both);
        assert_eq!(LockPass::of("u2", &[temp("u1", None), reset("u1")]), LockPass::default());
        let only_reset = LockPass { clears_temporary_lock: false, resets_unlock_count: true };
        assert_eq!(LockPass::of("u1", &[temp("u1", Some(5)), temp("u1", None), reset("u1")]), only_reset);
        assert!(LockPass::of("u1", &[temp("u1", None), temp("u2", Some(5))]).clears_temporary_lock);
        assert!(both.covers(&temp("u1", None)) && both.covers(&reset("u1")));
        assert!(!both.covers(&temp("u1", Some(5))));
        assert!(!only_reset.covers(&temp("u1", None)));
    }
}

#[cfg(test)]
mod login_name_tests {
    use super::login_names;

    /// Each name points at the user's name just before it in code point order, whatever order the aliases came in;
    /// the rows keep the username first and the aliases' order.
    #[test]
    fn each_name_knows_the_one_before_it() {
        let aliases = ["zed@example.test", "ann@example.test", "a\u{e9}"].map(String::from);
        let rows: Vec<_> = login_names("ann", &aliases).collect();
        assert_eq!(
            rows,
            [
                ("ann", "username", None),
                ("zed@example.test", "alias", Some("a\u{e9}")),
                ("ann@example.test", "alias", Some("ann")),
                ("a\u{e9}", "alias", Some("ann@example.test")),
            ]
        );
        assert_eq!(login_names("bob", &[]).collect::<Vec<_>>(), [("bob", "username", None)]);
    }
}

#[cfg(test)]
mod prefix_tests {
    use super::prefix_end;

    /// `[prefix, end)` holds exactly the texts that start with `prefix`, in code point order.
    #[test]
    fn the_end_of_a_prefix_range() {
        assert_eq!(prefix_end("bench12").as_deref(), Some("bench13"));
        assert_eq!(prefix_end("a%").as_deref(), Some("a&"));
        assert_eq!(prefix_end("zz").as_deref(), Some("z{"));
        assert_eq!(prefix_end("é").as_deref(), Some("ê"));
        assert_eq!(prefix_end("a\u{D7FF}").as_deref(), Some("a\u{E000}"));
        assert_eq!(prefix_end("a\u{10FFFF}").as_deref(), Some("b"));
        assert_eq!(prefix_end("\u{10FFFF}\u{10FFFF}"), None);
        assert_eq!(prefix_end(""), None);
        for (prefix, inside, outside) in
            [("ann", "ann\u{10FFFF}x", "ano"), ("a\u{10FFFF}", "a\u{10FFFF}\u{10FFFF}", "b")]
        {
            let end = prefix_end(prefix).unwrap();
            assert!(prefix <= inside && inside < end.as_str(), "{inside:?} in [{prefix:?}, {end:?})");
            assert!(outside >= end.as_str(), "{outside:?} after the range");
        }
    }
}

#[cfg(test)]
mod plan_tests {
    use sqlx::{Connection as _, Executor as _, Row as _};

    use super::{PG_USERS, SQLITE_USERS, UserQueries};

    /// SQLite's plan for `sql` with `binds` (texts, then the limit), one line per step.
    async fn sqlite_plan(pool: &sqlx::SqlitePool, sql: &str, binds: &[&str]) -> Vec<String> {
        let explain = format!("EXPLAIN QUERY PLAN {sql}");
        let mut query = sqlx::query(sqlx::AssertSqlSafe(explain.as_str()));
        for bind in binds {
            query = query.bind(*bind);
        }
        let rows = query.bind(100_i64).fetch_all(pool).await.unwrap();
        rows.iter().map(|row| row.get::<String, _>("detail")).collect()
    }

    /// Every lookup of the admin search goes through the username or the order of the names: neighbouring names of
    /// a page are neighbouring index entries, never one random descent by user id each, never a scan of a table
    /// and never a temporary B-tree to sort. Taken on the migrated schema after ANALYZE, as a served database has it.
    #[tokio::test]
    async fn the_admin_search_reads_by_name_on_sqlite() {
        let pool = sqlx::sqlite::SqlitePoolOptions::new().max_connections(1).connect("sqlite::memory:").await.unwrap();
        crate::migrations::sqlite().run(&pool).await.unwrap();
        sqlx::query("ANALYZE").execute(&pool).await.unwrap();
        let UserQueries { search_first, search_after, search_first_open, search_after_open, .. } = SQLITE_USERS;
        for (sql, binds) in [
            (search_first, &["bench", "benci"][..]),
            (search_after, &["bench", "bench12", "benci"][..]),
            (search_first_open, &["bench"][..]),
            (search_after_open, &["bench", "bench12"][..]),
        ] {
            let plan = sqlite_plan(&pool, sql, binds).await;
            let text = plan.join("\n");
            assert!(text.contains("SEARCH l USING PRIMARY KEY (login>"), "{text}");
            assert!(!text.contains("logins_owner"), "the names of the page's users come from the rows read: {text}");
            assert!(text.contains("SEARCH users USING PRIMARY KEY (username=?)"), "{text}");
            for step in &plan {
                assert!(!step.contains("user_id=?") || step.contains("failed_attempts"), "{text}");
                assert!(!step.starts_with("SCAN ") || step.starts_with("SCAN (subquery-"), "{text}");
                assert!(!step.contains("TEMP B-TREE"), "{text}");
            }
        }
    }

    /// PostgreSQL's plan of the search is the same one whether it is planned for the call's values or once for any
    /// (the generic plan a prepared statement switches to after five calls): the range of names read in order from
    /// the primary key and left at the limit, each user by username. Never a hash of the range and a sort (what the
    /// generic plan of one join did at 1,000 users), never parallel workers (what it did at 10 M), which this test
    /// makes tempting by pricing them at nothing.
    #[tokio::test]
    async fn the_admin_search_has_one_plan_on_postgres() {
        let (mut conn, _schema) = crate::test_postgres::fresh_schema("plan").await;
        sqlx::raw_sql(
            "SET parallel_setup_cost = 0; SET parallel_tuple_cost = 0; SET min_parallel_index_scan_size = 0; \
             SET min_parallel_table_scan_size = 0",
        )
        .execute(&mut conn)
        .await
        .unwrap();
        crate::migrations::postgres().run(&mut conn).await.unwrap();
        sqlx::raw_sql(
            "INSERT INTO users (id, username, created_at, updated_at) SELECT 'u' || i, 'bench' || i, 1, 1 FROM generate_series(0, 4999) i; \
             INSERT INTO logins (login, owner, kind, previous) SELECT 'bench' || i, 'bench' || i, 'username', NULL FROM generate_series(0, 4999) i \
             UNION ALL SELECT 'bench' || i || '@example.test', 'bench' || i, 'alias', 'bench' || i FROM generate_series(0, 4999) i; \
             ANALYZE",
        )
        .execute(&mut conn)
        .await
        .unwrap();
        let UserQueries { search_first, search_after, search_first_open, search_after_open, .. } = PG_USERS;
        for (i, (sql, binds)) in [
            (search_first, "'bench', 'benci', 100"),
            (search_after, "'bench', 'bench12', 'benci', 100"),
            (search_first_open, "'bench', 100"),
            (search_after_open, "'bench', 'bench12', 100"),
        ]
        .into_iter()
        .enumerate()
        {
            conn.execute(sqlx::AssertSqlSafe(format!("PREPARE search{i} AS {sql}"))).await.unwrap();
            for mode in ["force_custom_plan", "force_generic_plan"] {
                conn.execute(sqlx::AssertSqlSafe(format!("SET plan_cache_mode = {mode}"))).await.unwrap();
                let explain = format!("EXPLAIN (COSTS OFF) EXECUTE search{i}({binds})");
                let rows = sqlx::raw_sql(sqlx::AssertSqlSafe(explain)).fetch_all(&mut conn).await.unwrap();
                let text = rows.iter().map(|r| r.get::<String, _>(0)).collect::<Vec<_>>().join("\n");
                assert!(text.contains("Index Only Scan using logins_pkey on logins l"), "{mode}:\n{text}");
                assert!(!text.contains("logins_owner"), "{mode}:\n{text}");
                assert!(text.contains("Index Scan using users_username_key on users"), "{mode}:\n{text}");
                for step in ["Sort", "Hash", "Gather", "Parallel", "Seq Scan on users", "Seq Scan on logins"] {
                    assert!(!text.contains(step), "{mode}: {step}\n{text}");
                }
            }
        }
    }

    /// A prefix matches in code point order even where the database's own order is a language's (ICU en-US here,
    /// like en_US.UTF-8 of many installations): there "éa" lies between "e" and "f", so the range of the prefix "e"
    /// held it until migration 0016 gave the name columns the C collation.
    #[tokio::test]
    async fn a_prefix_matches_in_code_point_order_on_a_linguistic_postgres_database() {
        use std::str::FromStr as _;
        let url = crate::test_postgres::url();
        let database = format!("gh_icu_{}", std::process::id());
        let mut admin = sqlx::PgConnection::connect(&url).await.unwrap();
        admin.execute(sqlx::AssertSqlSafe(format!("DROP DATABASE IF EXISTS {database}"))).await.unwrap();
        let _database = crate::test_postgres::DropOnExit(format!("DROP DATABASE IF EXISTS {database} WITH (FORCE)"));
        let create = format!(
            "CREATE DATABASE {database} TEMPLATE template0 LOCALE_PROVIDER icu ICU_LOCALE 'en-US' LOCALE 'C.UTF-8'"
        );
        admin.execute(sqlx::AssertSqlSafe(create)).await.unwrap();
        let options = sqlx::postgres::PgConnectOptions::from_str(&url).unwrap().database(&database);
        let mut conn = sqlx::PgConnection::connect_with(&options).await.unwrap();
        let order: String =
            sqlx::query_scalar("SELECT string_agg(n, ' ' ORDER BY n) FROM unnest(ARRAY['éa', 'f', 'ea']) n")
                .fetch_one(&mut conn)
                .await
                .unwrap();
        assert_eq!(order, "ea éa f", "the database's own order is not linguistic");
        crate::migrations::postgres().run(&mut conn).await.unwrap();
        sqlx::raw_sql(
            "INSERT INTO users (id, username, created_at, updated_at) \
             SELECT 'u-' || n, n, 1, 1 FROM unnest(ARRAY['ea', 'éa', 'eb', 'e-a', 'f']) n; \
             INSERT INTO logins (login, owner, kind) SELECT username, username, 'username' FROM users",
        )
        .execute(&mut conn)
        .await
        .unwrap();
        let names = async |conn: &mut sqlx::PgConnection, after: Option<&str>| -> Vec<String> {
            let end = super::prefix_end("e").unwrap();
            let query = match after {
                None => sqlx::query(PG_USERS.search_first).bind("e").bind(end).bind(100_i64),
                Some(after) => sqlx::query(PG_USERS.search_after).bind("e").bind(after).bind(end).bind(100_i64),
            };
            let rows = query.fetch_all(conn).await.unwrap();
            rows.iter().map(|r| r.get::<String, _>("username")).collect()
        };
        assert_eq!(names(&mut conn, None).await, ["e-a", "ea", "eb"]);
        assert_eq!(names(&mut conn, Some("e-a")).await, ["ea", "eb"]);
        conn.close().await.unwrap();
    }
}
