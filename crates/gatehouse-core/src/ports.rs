//! The traits through which the domain reaches the outside world (storage, hashing, randomness).

use async_trait::async_trait;

use crate::audit::{AuditEvent, AuditQuery};
use crate::clock::Millis;
use crate::config::Counter;
use crate::flow::session::{FlowSessionRecord, NewFlowSession};
use crate::user::{FoundUsers, NewUser, User, UserPage};

/// Storage failures, type-erased: the domain only needs to know what it can react to.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("username `{0}` is taken")]
    UsernameTaken(String),
    #[error("alias `{0}` is taken")]
    AliasTaken(String),
    /// A value of an item that must be unique across users (`additional_unique_items`).
    #[error("a value of item `{0}` is taken")]
    ItemTaken(String),
    #[error("not found")]
    NotFound,
    #[error("database unavailable: {0}")]
    Unavailable(String),
    #[error("database error: {0}")]
    Other(String),
}

/// A message waiting in the outbox. `sealed` is the encrypted envelope (recipient, subject, body).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboxMessage {
    pub id: String,
    pub channel: Channel,
    pub sealed: String,
    pub created_at: Millis,
    /// Claimed for the node that queues it until then, in the transaction that queues it (its first attempt):
    /// that node's delivery worker takes it from memory after the commit, without a claim statement, and other
    /// nodes' claims skip it until then. `None`: queued for whichever node claims it first.
    pub claimed_until: Option<Millis>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Channel {
    Email,
    Sms,
    /// A letter for a print shop: the envelope's `to` holds the postal address lines.
    Letter,
    /// Nothing to send: queued where a real message would go for a user who must not get one (stealth mode),
    /// so that both paths do the same work; the worker drops it.
    Discard,
}

impl Channel {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Email => "email",
            Self::Sms => "sms",
            Self::Letter => "letter",
            Self::Discard => "discard",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "email" => Some(Self::Email),
            "sms" => Some(Self::Sms),
            "letter" => Some(Self::Letter),
            "discard" => Some(Self::Discard),
            _ => None,
        }
    }
}

/// An outbox row claimed by a delivery worker.
#[derive(Debug, Clone)]
pub struct ClaimedMessage {
    pub message: OutboxMessage,
    /// Delivery attempts including the current one.
    pub attempts: i64,
}

/// Rows housekeeping removes, each kind older than a time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Spent {
    /// Flow sessions that expired, or were last used, before these times.
    FlowSessions { expired_before: Millis, idle_before: Millis },
    /// Rate-limit windows that started before.
    RateLimitWindows { before: Millis },
    /// Email-link tokens that expired or were used before.
    LinkTokens { before: Millis },
    /// Check slots still held since before (their failure could not be written): given back.
    Reservations { before: Millis },
    /// Outbox rows delivered or given up before.
    Messages { before: Millis },
    /// Push approvals that expired or were decided before.
    Approvals { before: Millis },
    /// Authenticator activation codes that expired or were used before.
    Activations { before: Millis },
    /// Authenticated sessions that ended or expired before.
    AuthSessions { before: Millis },
    /// Audit events written before.
    AuditEvents { before: Millis },
    /// Spent CAPTCHA challenges that expired before.
    CaptchaSolutions { before: Millis },
    /// Application access tokens that expired before.
    AppTokens { before: Millis },
}

impl Spent {
    /// The housekeeping task's name (its lease, its log lines).
    pub fn name(&self) -> &'static str {
        match self {
            Self::FlowSessions { .. } => "flow_sessions",
            Self::RateLimitWindows { .. } => "rate_limit_windows",
            Self::LinkTokens { .. } => "link_tokens",
            Self::Reservations { .. } => "reservations",
            Self::Messages { .. } => "messages",
            Self::Approvals { .. } => "approvals",
            Self::Activations { .. } => "activations",
            Self::AuthSessions { .. } => "auth_sessions",
            Self::AuditEvents { .. } => "audit_events",
            Self::CaptchaSolutions { .. } => "captcha_solutions",
            Self::AppTokens { .. } => "app_tokens",
        }
    }
}

/// A wrong answer as counted: the failures now, and what they did past the limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Failure {
    pub count: i64,
    /// The user is locked by this failure (lock mode).
    pub locked: bool,
    /// The counter is blocked until then (throttle mode).
    pub blocked_until: Option<Millis>,
}

/// A change that is written together with the flow session (or an admin action) in one transaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Effect {
    SetPassword {
        user_id: String,
        password_hash: String,
        at: Millis,
    },
    /// Undo a reserved attempt that turned out to be a success.
    ReleaseAttempt {
        user_id: String,
        method_id: String,
    },
    ResetCounters {
        user_id: String,
        method_ids: Vec<String>,
    },
    ResetAllCounters {
        user_id: String,
    },
    /// Locks the user; an existing lock keeps its reason unless `replace` is set (an administrator's lock).
    Lock {
        user_id: String,
        reason: String,
        at: Millis,
        replace: bool,
    },
    /// Unlocks and resets every failed-attempt counter.
    Unlock {
        user_id: String,
        at: Millis,
    },
    DeleteUser {
        user_id: String,
    },
    /// Sets the validity period (either bound open).
    SetValidity {
        user_id: String,
        valid_from: Option<Millis>,
        valid_until: Option<Millis>,
        at: Millis,
    },
    /// Temporary locking: `None` lifts it.
    SetTemporaryLock {
        user_id: String,
        until: Option<Millis>,
    },
    ResetUnlockCount {
        user_id: String,
    },
    /// Sets (or with `None` removes) one context data item.
    SetContextItem {
        user_id: String,
        key: String,
        value: Option<String>,
        at: Millis,
    },
    CreateAuthSession(NewAuthSession),
    /// Replaces every secret answer of the user: (question, keyed hash of the normalised answer).
    SetSecretAnswers {
        user_id: String,
        answers: Vec<(String, String)>,
        at: Millis,
    },
    /// A single-use email-link token for a continuation flow.
    CreateContinuationToken(NewContinuationToken),
    EndAuthSession {
        id: String,
        at: Millis,
    },
    /// The user proved who they are again in session `id` (a step-up before a sensitive change).
    ReauthenticateSession {
        id: String,
        at: Millis,
    },
    /// Ends every authenticated session of the user but `except` (after a password change or reset).
    EndUserSessions {
        user_id: String,
        except: Option<String>,
        at: Millis,
    },
    /// Starts a TOTP enrollment (replacing any credential), unconfirmed until a first valid code.
    SetTotp {
        user_id: String,
        sealed_secret: String,
        at: Millis,
    },
    ConfirmTotp {
        user_id: String,
    },
    DeleteTotp {
        user_id: String,
    },
    /// A one-time activation code for the authenticator (its keyed hash).
    CreateActivation {
        code_hash: String,
        user_id: String,
        at: Millis,
        expires_at: Millis,
    },
    CreateApproval(Approval),
    /// Withdraws a request that is still pending.
    CancelApproval {
        id: String,
        at: Millis,
    },
    RenameDevice {
        id: String,
        user_id: String,
        display_name: String,
    },
    DeleteDevice {
        id: String,
        user_id: String,
    },
    Enqueue(OutboxMessage),
    Audit(AuditEvent),
    SetRoles {
        user_id: String,
        roles: Vec<String>,
        at: Millis,
    },
    SetAuthMethod {
        user_id: String,
        method: Option<String>,
        at: Millis,
    },
}

/// How the engine reports back the new state of a flow session.
#[derive(Debug, Clone)]
pub struct FlowSessionUpdate {
    pub id: String,
    /// The version read when the session was acquired; the write fails if it changed.
    pub version: i64,
    pub state: serde_json::Value,
    pub status: crate::flow::session::SessionStatus,
    pub last_seen_at: Millis,
    /// A new cookie token's keyed hash: the old cookie stops working (renewed when the flow learns who the
    /// user is, so a cookie planted before cannot ride along).
    pub token_hash: Option<String>,
}

/// An email-link token: only its keyed hash is stored; it identifies `user_id` in flow `flow_id`, once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewContinuationToken {
    pub token_hash: String,
    pub user_id: String,
    pub flow_id: String,
    pub created_at: Millis,
    pub expires_at: Millis,
}

/// An authenticated session as created at the end of an authentication flow.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewAuthSession {
    pub id: String,
    pub token_hash: String,
    pub user_id: String,
    /// Authentication method ids used, in order.
    pub factors: Vec<String>,
    pub created_at: Millis,
    pub expires_at: Millis,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthSessionRecord {
    pub id: String,
    pub user_id: String,
    pub factors: Vec<String>,
    pub created_at: Millis,
    /// The last time the user proved who they are in this session: the login, or a step-up since.
    pub authenticated_at: Millis,
    pub last_seen_at: Millis,
    pub expires_at: Millis,
}

/// Which second factors a user has, as far as offering them goes: what a selection step needs, in one read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Enrolled {
    /// A confirmed TOTP credential.
    pub totp: bool,
    /// At least one authenticator device.
    pub device: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TotpCredential {
    pub sealed_secret: String,
    pub confirmed: bool,
    pub last_step: i64,
    pub created_at: Millis,
}

/// A third-party application of the v1 API.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Application {
    pub id: String,
    pub name: String,
    /// The web origin the widget may run on (`https://app.example`).
    pub origin: String,
    pub callback_url: Option<String>,
    pub created_at: Millis,
    pub key_rotated_at: Option<Millis>,
    pub revoked_at: Option<Millis>,
}

/// An access token of an approved authentication, stored by its keyed hash: single use, for a short time, for
/// its application only.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppToken {
    pub token_hash: String,
    pub app_id: String,
    pub user_id: String,
    pub approval_id: Option<String>,
    /// `UNLOQ` (push) or `OTP` (a code from the device).
    pub method: String,
    pub ip: Option<String>,
    pub created_at: Millis,
    pub expires_at: Millis,
    /// The application's session id, given when the token was used.
    pub sid: Option<String>,
}

/// An application's enrollment of a person.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppEnrollment {
    /// The application's display name for the person.
    pub name: Option<String>,
    /// After a denied push the next authentication needs a code from the device.
    pub token_required: bool,
    pub created_at: Millis,
}

/// A registered authenticator device.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Device {
    pub id: String,
    pub user_id: String,
    pub public_key: String,
    #[serde(skip)]
    pub sealed_offline: String,
    pub display_name: String,
    pub created_at: Millis,
    pub last_seen_at: Option<Millis>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ApprovalStatus {
    Pending,
    Approved,
    Denied,
    /// The flow ended another way (offline code, abort): nothing to decide any more.
    Cancelled,
}

impl ApprovalStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Approved => "approved",
            Self::Denied => "denied",
            Self::Cancelled => "cancelled",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "pending" => Some(Self::Pending),
            "approved" => Some(Self::Approved),
            "denied" => Some(Self::Denied),
            "cancelled" => Some(Self::Cancelled),
            _ => None,
        }
    }
}

/// A push approval request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Approval {
    pub id: String,
    pub user_id: String,
    /// `login`, `password-reset`, `unlock`.
    pub kind: String,
    /// What the device shows: IP, time, flow.
    pub context: serde_json::Value,
    /// The number the browser shows.
    pub number: u32,
    /// The numbers the device offers (the right one among decoys).
    pub choices: Vec<u32>,
    /// Unique value that signatures cover, so a decision cannot be replayed for another request.
    pub nonce: String,
    pub status: ApprovalStatus,
    pub device_id: Option<String>,
    pub created_at: Millis,
    pub expires_at: Millis,
    pub decided_at: Option<Millis>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SelfUnlock {
    Unlocked,
    NotLocked,
    /// Locked for a reason self-service may not lift.
    NotAllowed,
    LimitReached,
}

/// The approval event that sends every waiter to the database, whatever it waits for: the store may have missed
/// events (its PostgreSQL listener lost its connection, or this node could not NOTIFY).
pub const LOOK_AGAIN: &str = "*";

pub enum Acquired {
    Session(Box<FlowSessionRecord>),
    /// Another request holds the session right now.
    Busy,
    NotFound,
}

#[async_trait]
pub trait Store: Send + Sync {
    async fn ping(&self) -> Result<(), StoreError>;

    async fn create_user(&self, user: &NewUser, audit: &AuditEvent) -> Result<User, StoreError>;
    /// By username or alias (both compared after [`crate::user::normalize_login`]).
    async fn find_user_by_login(&self, login: &str) -> Result<Option<User>, StoreError>;
    async fn get_user(&self, id: &str) -> Result<Option<User>, StoreError>;
    /// The id of the user whose unique item `item` holds `value` (see `NewUser::unique_items`).
    async fn unique_item_owner(&self, item: &str, value: &str) -> Result<Option<String>, StoreError>;
    /// Spends a solved CAPTCHA challenge (by its keyed hash): `true` the first time, on any node; kept until
    /// `expires_at`, after which the challenge is refused anyway.
    async fn spend_captcha(&self, tag: &str, expires_at: Millis) -> Result<bool, StoreError>;
    async fn list_users(&self) -> Result<Vec<User>, StoreError>;
    /// One page of users (see [`UserPage`]).
    async fn users_page(&self, page: &UserPage) -> Result<FoundUsers, StoreError>;

    /// Atomically counts one more check of `method_id` in flight *before* the answer is checked, unless failures
    /// and checks in flight already exceed `max` (then nobody may try: `None`) — except that a throttled counter
    /// whose block ended before `now` allows one check at a time. Returns failures plus checks in flight.
    async fn reserve_attempt(
        &self,
        user_id: &str,
        method_id: &str,
        max: u32,
        now: Millis,
    ) -> Result<Option<i64>, StoreError>;

    /// Turns a reserved check into a failure on `counter` and, when failures are now over its limit, locks the user
    /// or blocks the counter for a while — in one transaction, so failures and their consequence never disagree.
    /// A user deleted meanwhile: nothing counted.
    async fn record_failure(&self, user_id: &str, counter: &Counter, now: Millis) -> Result<Failure, StoreError>;

    /// Applies effects in one transaction.
    async fn apply(&self, effects: &[Effect]) -> Result<(), StoreError>;

    /// Counts one hit on `key` in a fixed window of `window_ms` (a new window starts once the old one is over),
    /// atomically; past `limit` hits, the milliseconds until the window ends.
    async fn hit_rate_limit(
        &self,
        key: &str,
        window_ms: i64,
        limit: u32,
        now: Millis,
    ) -> Result<Option<i64>, StoreError>;

    /// Removes up to `batch` rows of one kind that housekeeping no longer needs (see [`Spent`]); the rows
    /// removed (or, for check slots, given back).
    async fn purge(&self, what: Spent, batch: i64) -> Result<u64, StoreError>;

    /// Takes (or renews) the lease of housekeeping task `task` for `holder` until `until`, unless another holder's
    /// lease lasts past `now`; whether this holder has it now.
    async fn take_lease(&self, task: &str, holder: &str, now: Millis, until: Millis) -> Result<bool, StoreError>;
    /// Gives up every lease `holder` has (a stopping node), so another node takes the tasks at its next round
    /// instead of when the leases run out; how many there were.
    async fn release_leases(&self, holder: &str) -> Result<u64, StoreError>;

    /// Stores a new flow session with `effects` in one transaction; `false` (and nothing written) when a
    /// session with its id exists already (a flow started statelessly whose first call was raced).
    async fn create_flow_session(&self, session: &NewFlowSession, effects: &[Effect]) -> Result<bool, StoreError>;
    /// Takes the session for one request: only one request at a time may hold it (until `lease_until`).
    async fn acquire_flow_session(
        &self,
        token_hash: &str,
        now: Millis,
        lease_until: Millis,
    ) -> Result<Acquired, StoreError>;
    /// Writes the new state with the effects and releases the lease; `false` if the version moved on.
    async fn commit_flow_session(&self, update: &FlowSessionUpdate, effects: &[Effect]) -> Result<bool, StoreError>;
    /// Gives the lease back without changing anything.
    async fn release_flow_session(&self, id: &str, version: i64) -> Result<(), StoreError>;

    async fn claim_outbox(
        &self,
        now: Millis,
        claim_until: Millis,
        limit: i64,
    ) -> Result<Vec<ClaimedMessage>, StoreError>;
    /// Marks delivered and drops the sealed payload, which may hold a one-time code.
    /// Marks messages delivered, in one statement (one write for a whole batch).
    async fn mark_delivered(&self, ids: &[String], at: Millis) -> Result<(), StoreError>;
    /// Gives claimed messages that were not sent back at once (a worker stopping), with their attempt undone, so
    /// that another node or the next start sends them without waiting out the claim.
    async fn release_claims(&self, ids: &[String]) -> Result<(), StoreError>;
    async fn mark_retry(&self, id: &str, error: &str, next_attempt_at: Millis) -> Result<(), StoreError>;
    async fn mark_abandoned(&self, id: &str, error: &str, at: Millis) -> Result<(), StoreError>;
    async fn pending_outbox(&self) -> Result<i64, StoreError>;
    /// Messages not yet delivered, and when the oldest of them was queued.
    async fn outbox_backlog(&self) -> Result<(i64, Option<Millis>), StoreError>;
    /// Connections of the database pool: (open, idle).
    fn pool_stats(&self) -> (u32, usize);
    /// The database server's clock (`gatehouse doctor` compares it with this node's).
    async fn database_time(&self) -> Result<Millis, StoreError>;
    /// Records the fingerprint of the server key unless one is recorded already; the recorded one. Every node
    /// must hold the same key (it opens sealed data and recognises tokens).
    async fn register_key(&self, fingerprint: &str, now: Millis) -> Result<String, StoreError>;
    async fn registered_key(&self) -> Result<Option<String>, StoreError>;
    /// Versions of the migrations applied to the database.
    async fn applied_migrations(&self) -> Result<Vec<i64>, StoreError>;

    /// The newest `limit` audit events (at most [`AuditQuery::MAX_LIMIT`]).
    async fn list_audit(&self, limit: i64) -> Result<Vec<AuditEvent>, StoreError> {
        let limit = u32::try_from(limit.max(1)).unwrap_or(AuditQuery::MAX_LIMIT);
        self.query_audit(&AuditQuery { limit, ..AuditQuery::default() }).await
    }

    /// One page of the audit trail that matches `query`.
    async fn query_audit(&self, query: &AuditQuery) -> Result<Vec<AuditEvent>, StoreError>;

    /// The live session for a cookie, touched: `None` if unknown, ended, expired or idle since before `idle_before`.
    async fn touch_auth_session(
        &self,
        token_hash: &str,
        now: Millis,
        idle_before: Millis,
    ) -> Result<Option<AuthSessionRecord>, StoreError>;

    async fn get_totp(&self, user_id: &str) -> Result<Option<TotpCredential>, StoreError>;
    /// Whether the user has a confirmed TOTP credential and an authenticator device, in one statement.
    async fn enrolled(&self, user_id: &str) -> Result<Enrolled, StoreError>;
    /// Whether each of these users' TOTP credential is confirmed, for the users that have one: a page of users in
    /// one statement.
    async fn totp_states(&self, user_ids: &[String]) -> Result<std::collections::BTreeMap<String, bool>, StoreError>;
    /// Accepts time step `step` for the user's confirmed TOTP credential only if it is later than every step
    /// accepted before (atomically), so a code works once.
    async fn consume_totp_step(&self, user_id: &str, step: i64) -> Result<bool, StoreError>;

    /// The user's secret answers: (question, keyed hash), by question.
    async fn get_secret_answers(&self, user_id: &str) -> Result<Vec<(String, String)>, StoreError>;

    /// Uses an email-link token of flow `flow_id` (atomically: once, before it expires) and returns its user.
    async fn consume_continuation_token(
        &self,
        token_hash: &str,
        flow_id: &str,
        now: Millis,
    ) -> Result<Option<String>, StoreError>;

    /// Registers an application with the keyed hash of its API key; `false` if the name is taken.
    async fn create_application(&self, app: &Application, key_hash: &str) -> Result<bool, StoreError>;
    /// The live (not revoked) application whose key has this hash.
    async fn application_by_key(&self, key_hash: &str) -> Result<Option<Application>, StoreError>;
    async fn application_by_name(&self, name: &str) -> Result<Option<Application>, StoreError>;
    /// The live (not revoked) application with this public id.
    async fn application_by_id(&self, id: &str) -> Result<Option<Application>, StoreError>;
    async fn list_applications(&self) -> Result<Vec<Application>, StoreError>;
    /// Replaces the key of a live application; `false` if there is none of that name.
    async fn rotate_application_key(&self, name: &str, key_hash: &str, at: Millis) -> Result<bool, StoreError>;
    /// Revokes an application (its key stops working at once); `false` if there is no live one of that name.
    async fn revoke_application(&self, name: &str, at: Millis) -> Result<bool, StoreError>;
    /// Records that `app_id` enrolled `user_id` (idempotent; a `name` given replaces the one kept).
    async fn enroll_app_user(
        &self,
        app_id: &str,
        user_id: &str,
        name: Option<&str>,
        at: Millis,
    ) -> Result<(), StoreError>;
    async fn app_user_enrolled(&self, app_id: &str, user_id: &str) -> Result<bool, StoreError>;
    /// After a denied push the next authentication needs a code from the device; a success clears that.
    async fn set_app_token_required(&self, app_id: &str, user_id: &str, required: bool) -> Result<(), StoreError>;
    async fn app_enrollment(&self, app_id: &str, user_id: &str) -> Result<Option<AppEnrollment>, StoreError>;
    /// Accepts time step `step` of a device code for this enrollment only if it is later than any accepted before
    /// (atomically), so a code works once.
    async fn use_app_code_step(&self, app_id: &str, user_id: &str, step: i64) -> Result<bool, StoreError>;
    async fn create_app_token(&self, token: &AppToken) -> Result<(), StoreError>;
    /// Notes that application `app_id` made push request `approval_id` (after the request was stored).
    async fn record_app_approval(&self, app_id: &str, approval_id: &str, at: Millis) -> Result<(), StoreError>;
    /// Marks the application's approved request as turned into an access token (atomically: `true` once).
    async fn claim_app_approval_token(&self, app_id: &str, approval_id: &str, at: Millis) -> Result<bool, StoreError>;
    /// One page of the application's requests, newest first, and how many there are in all.
    async fn app_approvals(&self, app_id: &str, offset: i64, limit: i64) -> Result<(Vec<Approval>, i64), StoreError>;
    /// One of the application's requests.
    async fn app_approval(&self, app_id: &str, approval_id: &str) -> Result<Option<Approval>, StoreError>;
    /// Uses an access token of application `app_id` (atomically: once, before it expires), noting the
    /// application's session id.
    async fn consume_app_token(
        &self,
        token_hash: &str,
        app_id: &str,
        sid: Option<&str>,
        now: Millis,
    ) -> Result<Option<AppToken>, StoreError>;
    /// Removes the application's enrollment of the user (never the user's devices); whether there was one.
    async fn unenroll_app_user(&self, app_id: &str, user_id: &str) -> Result<bool, StoreError>;

    /// Stores a new admin API token; `false` if the name is taken.
    async fn create_admin_token(&self, name: &str, token_hash: &str, at: Millis) -> Result<bool, StoreError>;
    /// The name of the token with this hash, marking it used: `last_used_at` is written when it is a minute or
    /// more older than `at` (or unset), so admin reads do not each wait for a write.
    async fn use_admin_token(&self, token_hash: &str, at: Millis) -> Result<Option<String>, StoreError>;
    async fn delete_admin_token(&self, name: &str) -> Result<bool, StoreError>;
    async fn list_admin_tokens(&self) -> Result<Vec<(String, Millis, Option<Millis>)>, StoreError>;

    /// Uses an activation code (once, before it expires) and registers `device` for its user, atomically.
    /// Returns the user's id, or `None` if the code is unknown, used or expired.
    async fn activate_device(
        &self,
        code_hash: &str,
        now: Millis,
        device: &Device,
    ) -> Result<Option<String>, StoreError>;
    async fn list_devices(&self, user_id: &str) -> Result<Vec<Device>, StoreError>;
    async fn get_device(&self, id: &str) -> Result<Option<Device>, StoreError>;
    async fn touch_device(&self, id: &str, now: Millis) -> Result<(), StoreError>;
    async fn get_approval(&self, id: &str) -> Result<Option<Approval>, StoreError>;
    /// Undecided, unexpired requests of a user.
    async fn pending_approvals(&self, user_id: &str, now: Millis) -> Result<Vec<Approval>, StoreError>;
    /// Self-unlock, atomically: unlocks the user only if locked for one of `allowed_reasons` and (with a `max`)
    /// fewer than `max` unlocks happened; counts the unlock and resets `counters`.
    async fn self_unlock(
        &self,
        user_id: &str,
        allowed_reasons: &[String],
        max: Option<u32>,
        counters: &[String],
        at: Millis,
    ) -> Result<SelfUnlock, StoreError>;
    /// Approval events (`created:<user id>`, `decided:<approval id>`) from every node: a hint to look again,
    /// never the truth (that is in the database). [`LOOK_AGAIN`] tells every waiter to look, whatever it waits
    /// for: the store may have missed events. A waiter reads the database when an event for it arrives, on
    /// [`LOOK_AGAIN`], when it fell behind the channel, and at its deadline, and at no other time: a store whose
    /// events cannot cover every writer sends [`LOOK_AGAIN`] as often as waiters must look (SQLite, whose file
    /// another process may share: once a second if anything committed; PostgreSQL: while its listener reconnects).
    fn approval_events(&self) -> tokio::sync::broadcast::Receiver<String>;
    /// Records a device's decision, only while the request is pending and unexpired; `false` otherwise.
    async fn decide_approval(&self, id: &str, device_id: &str, approve: bool, now: Millis) -> Result<bool, StoreError>;
}
