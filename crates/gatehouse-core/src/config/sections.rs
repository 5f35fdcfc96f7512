use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::steps::{OtpConfig, PasswordStep, SelectionStep, Step};

/// The whole configuration file.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    pub server: ServerConfig,
    pub storage: StorageConfig,
    pub hashing: HashingConfig,
    pub password_policy: PasswordPolicyConfig,
    pub lockout: LockoutConfig,
    pub messaging: MessagingConfig,
    pub flow_sessions: FlowSessionConfig,
    pub authentication: AuthenticationConfig,
    pub authenticator: AuthenticatorConfig,
    pub public_self_service: PublicSelfServiceConfig,
    pub self_registration: super::registration::SelfRegistrationConfig,
    pub users: UsersConfig,
    pub ui: UiConfig,
    pub rate_limits: RateLimitsConfig,
    pub audit: AuditConfig,
    pub metrics: MetricsConfig,
}

/// The end-user web pages under `/ui/…`.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct UiConfig {
    pub enabled: bool,
    pub product_name: String,
    /// An image URL shown in the header (same origin, or allowed by the operator's own CSP).
    pub logo_url: Option<String>,
    /// The accent colour, `#rgb` or `#rrggbb`.
    pub brand_color: String,
    /// Page templates and translations (`<name>.html`, `<lang>.json`) that replace the built-in ones.
    pub templates_dir: Option<PathBuf>,
    /// The public self-service flow behind "Forgot password?" on the login page.
    pub forgot_password_flow: Option<String>,
    /// The public self-service flow behind "Unlock my account".
    pub unlock_flow: Option<String>,
}

impl Default for UiConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            product_name: "Gatehouse".into(),
            logo_url: None,
            brand_color: "#1f5fbf".into(),
            templates_dir: None,
            forgot_password_flow: Some("password-reset".into()),
            unlock_flow: Some("self-unlock".into()),
        }
    }
}

/// Accounts created outside registration (`gatehouse user add`, the admin API).
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct UsersConfig {
    /// The `email` given to `user add --email` is also a login name (an alias), as registration flows make it.
    pub email_as_alias: bool,
}

/// Where Prometheus reads `/metrics`: never on the public port without a token.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct MetricsConfig {
    /// A listener of its own for `/metrics` (e.g. `127.0.0.1:9464`); unset: none.
    pub listen: Option<String>,
    /// A file holding a bearer token (16 characters or more) that opens `/metrics` on the public port too.
    pub bearer_token_file: Option<PathBuf>,
}

/// The audit trail in the database (`GET /rest/admin/audit`, `gatehouse audit`).
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct AuditConfig {
    /// Events older than this are removed by housekeeping, in small batches; 0 keeps them forever.
    pub retention_days: u32,
}

impl Default for AuditConfig {
    fn default() -> Self {
        Self { retention_days: 365 }
    }
}

/// Limits on the calls that try an answer or name an account (identify, password check, every code check and
/// resend, link tokens, device activation), held in the database so they hold across nodes. Known and unknown
/// accounts are counted alike (by the name as entered).
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct RateLimitsConfig {
    pub enabled: bool,
    /// Such calls from one client address per window.
    pub per_ip_requests: u32,
    pub per_ip_window_seconds: u64,
    /// Such calls about one account name (as entered) per window, from anywhere.
    pub per_account_requests: u32,
    pub per_account_window_seconds: u64,
    /// Reverse proxies whose `X-Forwarded-For` names the client (exact addresses).
    pub trusted_proxies: Vec<String>,
}

impl Default for RateLimitsConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            per_ip_requests: 120,
            per_ip_window_seconds: 60,
            per_account_requests: 30,
            per_account_window_seconds: 900,
            trusted_proxies: Vec::new(),
        }
    }
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServerConfig {
    /// Address the HTTP server listens on.
    pub bind: String,
    /// The URL users reach this server at, put into links in messages; unset: `http://<bind>`.
    pub public_url: Option<String>,
    /// Directory for the SQLite database, the file outbox and the generated secret key.
    pub data_dir: PathBuf,
    /// Base64 of at least 32 random bytes; every node of a cluster needs the same key.
    pub secret_key: Option<String>,
    /// File holding the base64 key (alternative to `secret_key`).
    pub secret_key_file: Option<PathBuf>,
    /// Trust `X-Forwarded-Proto: https` from a reverse proxy to mark cookies `Secure`.
    pub trust_forwarded_proto: bool,
    /// Always mark cookies `Secure` (TLS terminated in front of Gatehouse).
    pub secure_cookies: bool,
    /// Largest accepted request body.
    pub max_body_bytes: usize,
    /// How long a graceful shutdown waits for in-flight requests (also those whose client hung up).
    pub shutdown_grace_seconds: u64,
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            bind: "127.0.0.1:8080".into(),
            public_url: None,
            data_dir: PathBuf::from("./gatehouse-data"),
            secret_key: None,
            secret_key_file: None,
            trust_forwarded_proto: false,
            secure_cookies: false,
            max_body_bytes: 64 * 1024,
            shutdown_grace_seconds: 30,
        }
    }
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct StorageConfig {
    /// `sqlite://PATH` or `postgres://…`; empty means `sqlite://DATA_DIR/gatehouse.db`.
    pub url: Option<String>,
    pub max_connections: u32,
    /// PostgreSQL only: schema to use (created if missing); lets several installations share one database.
    pub schema: Option<String>,
    /// How long a statement waits for a lock held by another connection (SQLite busy timeout, PostgreSQL
    /// `lock_timeout`) before the call answers 503 + Retry-After.
    pub lock_wait_ms: u64,
}

impl Default for StorageConfig {
    fn default() -> Self {
        Self { url: None, max_connections: 16, schema: None, lock_wait_ms: 5000 }
    }
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct HashingConfig {
    /// Argon2id memory cost in KiB.
    pub memory_kib: u32,
    /// Argon2id iterations.
    pub iterations: u32,
    /// Argon2id lanes.
    pub parallelism: u32,
    /// Hashing threads; 0 means one per core.
    pub workers: usize,
    /// Hash jobs allowed to wait for a worker before the server answers 503.
    pub queue_capacity: usize,
    /// Every password check (a dummy one for an unknown name too) waits until it took as long as checks of the
    /// slowest kind of stored hash (imported bcrypt, PBKDF2, older argon2 parameters), up to this; 0 turns it off.
    pub equalize_max_ms: u64,
}

impl Default for HashingConfig {
    fn default() -> Self {
        Self { memory_kib: 19456, iterations: 2, parallelism: 1, workers: 0, queue_capacity: 64, equalize_max_ms: 2000 }
    }
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct PasswordPolicyConfig {
    /// Minimum length in characters.
    pub min_length: usize,
    /// Maximum length in characters.
    pub max_length: usize,
    /// Reject a password equal to (or containing) the username.
    pub reject_username: bool,
    /// Reject the current password (`SAME_AS_OLD`).
    pub reject_same_as_old: bool,
    /// Minimum zxcvbn score (0–4); below it the password is `TOO_GUESSABLE`.
    pub min_strength: u8,
}

impl Default for PasswordPolicyConfig {
    fn default() -> Self {
        Self { min_length: 8, max_length: 128, reject_username: true, reject_same_as_old: true, min_strength: 2 }
    }
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct LockoutConfig {
    /// A user is locked once the failed-attempt counter of a method exceeds this value.
    pub max_failed_attempts: u32,
    /// Per authentication method id overrides, e.g. `PASSWORD = 5`.
    pub per_method: BTreeMap<String, u32>,
    /// What wrong answers in public flows (password reset, self-unlock, registration) do past the limit.
    pub public_flow_failures: PublicFlowFailures,
    /// How long a factor stays blocked in public flows once its public counter is over the limit (throttle).
    pub public_throttle: ThrottleConfig,
}

impl Default for LockoutConfig {
    fn default() -> Self {
        Self {
            max_failed_attempts: 3,
            per_method: BTreeMap::new(),
            public_flow_failures: PublicFlowFailures::Lock,
            public_throttle: ThrottleConfig::default(),
        }
    }
}

/// What a public flow's wrong answers do once a factor's counter is over its limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum PublicFlowFailures {
    /// As the product does: they count on the user's counter and lock the account (anyone who knows a name can
    /// lock its user).
    Lock,
    /// They count on a counter of their own (`<METHOD>:PUBLIC`); past the limit the factor is blocked in public
    /// flows for a growing time, and the account stays as it is (login is not affected).
    Throttle,
}

/// After n failures over the limit, the factor is blocked for `base_ms × factor^(n−1) + additional_ms × (n−1)`,
/// at most `max_ms`.
#[derive(Debug, Clone, Copy, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct ThrottleConfig {
    pub base_ms: u64,
    pub factor: f64,
    pub additional_ms: u64,
    pub max_ms: u64,
}

impl Default for ThrottleConfig {
    fn default() -> Self {
        Self { base_ms: 60_000, factor: 2.0, additional_ms: 0, max_ms: 86_400_000 }
    }
}

impl ThrottleConfig {
    /// The block after `over` failures beyond the limit (0 for none).
    pub fn delay_ms(&self, over: i64) -> u64 {
        growing_delay_ms(self.base_ms, self.factor, self.additional_ms, self.max_ms, over)
    }
}

/// `base × factor^(n−1) + additional × (n−1)`, capped at `max`; 0 for `n ≤ 0`.
fn growing_delay_ms(base: u64, factor: f64, additional: u64, max: u64, n: i64) -> u64 {
    if n <= 0 {
        return 0;
    }
    let k = i32::try_from(n - 1).unwrap_or(i32::MAX);
    let delay = (base as f64) * factor.powi(k) + (additional as f64) * f64::from(k);
    if delay.is_finite() && delay < max as f64 { delay.max(0.0) as u64 } else { max }
}

/// Where one wrong answer counts and what happens once the counter is over `max`.
#[derive(Debug, Clone, PartialEq)]
pub struct Counter {
    pub method_id: String,
    pub max: u32,
    pub over_limit: OverLimit,
}

#[derive(Debug, Clone, PartialEq)]
pub enum OverLimit {
    /// Lock the user with this reason.
    Lock { reason: String },
    /// Block further checks on this counter for a growing time.
    Throttle(ThrottleConfig),
}

impl LockoutConfig {
    pub fn max_for(&self, method_id: &str) -> u32 {
        self.per_method.get(method_id).copied().unwrap_or(self.max_failed_attempts)
    }

    /// The counter a wrong answer to `method_id` counts on, in a public flow or not.
    pub fn counter(&self, method_id: &str, public: bool) -> Counter {
        let max = self.max_for(method_id);
        if public && self.public_flow_failures == PublicFlowFailures::Throttle {
            return Counter {
                method_id: format!("{method_id}{PUBLIC_COUNTER_SUFFIX}"),
                max,
                over_limit: OverLimit::Throttle(self.public_throttle),
            };
        }
        let reason = crate::user::lock_reason::too_many_auth_attempts(method_id);
        Counter { method_id: method_id.to_owned(), max, over_limit: OverLimit::Lock { reason } }
    }
}

/// Appended to a method id for the counter of public flows in throttle mode.
pub const PUBLIC_COUNTER_SUFFIX: &str = ":PUBLIC";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Transport {
    File,
    Smtp,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct MessagingConfig {
    pub transport: Transport,
    /// Sender of every mail, RFC 5322 mailbox syntax.
    pub from: String,
    /// Language of messages for users without a `language` context item (`en` or `de`).
    pub default_language: String,
    /// Directory of the file outbox; empty means `DATA_DIR/outbox`.
    pub outbox_dir: Option<PathBuf>,
    /// Directory of template overrides: `<template>.<language>.txt` files replace the built-in ones.
    pub templates_dir: Option<PathBuf>,
    /// Where letters are written as PDF files for a print shop; empty means `DATA_DIR/letters`.
    pub letters_dir: Option<PathBuf>,
    /// Messages delivered at the same time (SMTP connections from the pool, SMS requests).
    pub concurrency: usize,
    /// How often the delivery worker asks the store for messages it was not handed by this node's calls: retries
    /// that came due, messages other nodes left. A call that queues a message wakes it at once either way.
    pub poll_interval_ms: u64,
    pub retry_initial_delay_ms: u64,
    pub retry_max_delay_ms: u64,
    /// Messages still undelivered after this long are given up (and logged).
    pub max_age_seconds: u64,
    pub smtp: SmtpConfig,
    pub sms: SmsConfig,
}

impl Default for MessagingConfig {
    fn default() -> Self {
        Self {
            transport: Transport::File,
            from: "Gatehouse <noreply@gatehouse.invalid>".into(),
            default_language: "en".into(),
            outbox_dir: None,
            templates_dir: None,
            letters_dir: None,
            concurrency: 16,
            poll_interval_ms: 1000,
            retry_initial_delay_ms: 1000,
            retry_max_delay_ms: 300_000,
            max_age_seconds: 48 * 3600,
            smtp: SmtpConfig::default(),
            sms: SmsConfig::default(),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum SmsTransport {
    /// `OUTBOX_DIR/*.sms.json` files with `to` and `text`.
    File,
    /// POST `{"to", "text"}` as JSON to `url`.
    Http,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct SmsConfig {
    pub transport: SmsTransport,
    /// The gateway endpoint (transport = "http").
    pub url: Option<String>,
    /// Sent as `Authorization: Bearer …`.
    pub bearer_token: Option<String>,
    pub bearer_token_file: Option<PathBuf>,
    pub timeout_seconds: u64,
}

impl Default for SmsConfig {
    fn default() -> Self {
        Self {
            transport: SmsTransport::File,
            url: None,
            bearer_token: None,
            bearer_token_file: None,
            timeout_seconds: 10,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum SmtpTls {
    /// Plain connection upgraded with STARTTLS (required).
    Starttls,
    /// TLS from the first byte (port 465).
    Tls,
    /// No encryption; only allowed towards a loopback host.
    None,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct SmtpConfig {
    pub host: String,
    pub port: u16,
    pub tls: SmtpTls,
    pub username: Option<String>,
    pub password: Option<String>,
    pub password_file: Option<PathBuf>,
    /// PEM file of a CA to trust besides the public roots (a company CA in front of the mail server).
    pub ca_file: Option<PathBuf>,
    pub timeout_seconds: u64,
    /// How long an idle connection is kept for the next mail; then it is closed (QUIT), whether or not another
    /// mail comes. 0: a connection per mail.
    pub keep_idle_seconds: u64,
}

impl Default for SmtpConfig {
    fn default() -> Self {
        Self {
            host: "localhost".into(),
            port: 587,
            tls: SmtpTls::Starttls,
            username: None,
            password: None,
            password_file: None,
            ca_file: None,
            timeout_seconds: 10,
            keep_idle_seconds: 60,
        }
    }
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct FlowSessionConfig {
    /// A flow session unused for this long expires.
    pub idle_timeout_seconds: u64,
    /// A flow session expires this long after it started, whatever happens.
    pub max_lifetime_seconds: u64,
}

impl Default for FlowSessionConfig {
    fn default() -> Self {
        Self { idle_timeout_seconds: 900, max_lifetime_seconds: 3600 }
    }
}

#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct PublicSelfServiceConfig {
    /// Self-unlocks allowed without a successful login in between (unset: unlimited; a risk `config check` names).
    pub max_number_of_unlocks: Option<u32>,
    /// Every call on an enumeration-safe flow (no restriction feedback) answers no sooner than this after it
    /// arrived, successes and failures alike, so response times tell nothing about the account. 0: off.
    pub response_time_ms: u64,
    pub secret_questions: SecretQuestionsConfig,
    pub flows: Vec<PublicSelfServiceFlow>,
}

impl PublicSelfServiceConfig {
    pub fn flow(&self, id: &str) -> Option<&PublicSelfServiceFlow> {
        self.flows.iter().find(|f| f.id == id)
    }

    /// The flow marked `legacy_reset_entry`, if any.
    pub fn legacy_reset_flow(&self) -> Option<&PublicSelfServiceFlow> {
        self.flows.iter().find(|f| f.legacy_reset_entry)
    }
}

/// What a completed self-service flow hands to the next login (reference §2.7): the login of `application`
/// (default: the default application) starts with the user known, for `validity_seconds`. A self-service gives
/// little identity evidence, so strong authentication should still follow.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct NextAuthFlow {
    pub application: Option<String>,
    pub skip: NextAuthSkip,
    pub validity_seconds: u64,
}

impl Default for NextAuthFlow {
    fn default() -> Self {
        Self { application: None, skip: NextAuthSkip::Username, validity_seconds: 300 }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum NextAuthSkip {
    /// The password is still asked, the username not (`password/check` with `{"password"}` alone).
    Username,
    /// The login goes straight to the steps after the password (the second factor).
    Password,
}

/// The questions users may answer (resource keys a client translates, containing a `.`) and what a set of
/// answers needs.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct SecretQuestionsConfig {
    pub questions: Vec<String>,
    /// Answers a user must give at once (and the most a verification step can ask).
    pub min_answers: usize,
    /// Characters an answer needs after normalisation.
    pub min_answer_length: usize,
}

impl Default for SecretQuestionsConfig {
    fn default() -> Self {
        Self {
            questions: [
                "secret-question.first-pet",
                "secret-question.birth-city",
                "secret-question.first-school",
                "secret-question.childhood-friend",
                "secret-question.first-concert",
                "secret-question.favourite-teacher",
            ]
            .map(str::to_owned)
            .to_vec(),
            min_answers: 3,
            min_answer_length: 3,
        }
    }
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct PublicSelfServiceFlow {
    pub id: String,
    /// The flow an `identify` call starts when no flow was selected, so clients of the old password-reset API,
    /// which never call `select`, keep working (at most one flow; keep its id).
    #[serde(default)]
    pub legacy_reset_entry: bool,
    /// After the flow completes, the next login in the same browser starts knowing the user.
    #[serde(default)]
    pub initialize_next_auth_flow: Option<NextAuthFlow>,
    #[serde(default)]
    pub restrictions: Restrictions,
    pub steps: Vec<Step>,
}

/// Who may run a public self-service flow, and whether a refused user is told.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(tag = "type", rename_all = "kebab-case", deny_unknown_fields)]
pub enum Restrictions {
    /// Nonexistent → invalid → locked, each silent unless its feedback flag is on.
    PasswordReset(PasswordResetRestrictions),
    /// Nonexistent → invalid → locked for a reason not allowed → too many unlocks.
    SelfUnlock(SelfUnlockRestrictions),
}

impl Restrictions {
    /// Whether every refusal is reported: then no user reaches the flow's steps in stealth mode, and what the
    /// steps offer tells nothing the identification did not already say.
    pub fn all_feedback(&self) -> bool {
        match self {
            Self::PasswordReset(r) => r.nonexistent_user_feedback && r.invalid_user_feedback && r.locked_user_feedback,
            Self::SelfUnlock(r) => {
                r.nonexistent_user_feedback
                    && r.invalid_user_feedback
                    && r.locked_user_feedback
                    && r.too_many_unlocks_feedback
            }
        }
    }

    /// Whether any refusal is reported to the caller (and so the flow is not enumeration-safe).
    pub fn any_feedback(&self) -> bool {
        match self {
            Self::PasswordReset(r) => r.nonexistent_user_feedback || r.invalid_user_feedback || r.locked_user_feedback,
            Self::SelfUnlock(r) => {
                r.nonexistent_user_feedback
                    || r.invalid_user_feedback
                    || r.locked_user_feedback
                    || r.too_many_unlocks_feedback
            }
        }
    }
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct SelfUnlockRestrictions {
    pub nonexistent_user_feedback: bool,
    pub invalid_user_feedback: bool,
    pub locked_user_feedback: bool,
    pub too_many_unlocks_feedback: bool,
    /// Only users locked for one of these reasons may unlock themselves (users who are not locked may run the flow).
    pub allowed_lock_reasons: Vec<String>,
}

impl Default for SelfUnlockRestrictions {
    fn default() -> Self {
        Self {
            nonexistent_user_feedback: false,
            invalid_user_feedback: false,
            locked_user_feedback: false,
            too_many_unlocks_feedback: false,
            allowed_lock_reasons: vec![
                "LockReason.TooManyAuthAtts.PASSWORD".into(),
                "LockReason.MaxWrongOldPassword".into(),
            ],
        }
    }
}

impl Default for Restrictions {
    fn default() -> Self {
        Self::PasswordReset(PasswordResetRestrictions::default())
    }
}

#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct PasswordResetRestrictions {
    pub nonexistent_user_feedback: bool,
    pub invalid_user_feedback: bool,
    pub locked_user_feedback: bool,
    /// Let users locked by too many wrong passwords reset their password.
    pub allow_locked_user: bool,
}

impl Config {
    /// The URL devices reach this server at: `authenticator.public_url`, else `server.public_url`.
    pub fn device_url(&self) -> String {
        match self.authenticator.public_url.as_deref().map(str::trim).filter(|u| !u.is_empty()) {
            Some(url) => url.trim_end_matches('/').to_owned(),
            None => self.public_url(),
        }
    }

    /// The URL links in messages start with (no trailing slash).
    pub fn public_url(&self) -> String {
        match self.server.public_url.as_deref().map(str::trim).filter(|u| !u.is_empty()) {
            Some(url) => url.trim_end_matches('/').to_owned(),
            None => format!("http://{}", self.server.bind),
        }
    }

    /// `storage.url`, or the SQLite file in the data directory.
    pub fn database_url(&self) -> String {
        self.storage
            .url
            .clone()
            .filter(|u| !u.trim().is_empty())
            .unwrap_or_else(|| format!("sqlite://{}", self.server.data_dir.join("gatehouse.db").display()))
    }
}

/// Login: the flows (ordered steps), the applications that use them, and the settings the factors share.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct AuthenticationConfig {
    /// Every failure of the password step answers the same `AUTHENTICATION_FAILED`, after `response_time_ms`.
    pub enumeration_protection: bool,
    /// Fixed duration of failed password checks in enumeration-protection mode.
    pub response_time_ms: u64,
    pub temporary_locking: TemporaryLockingConfig,
    /// Counter of the password step.
    pub password_method_id: String,
    pub session: AuthSessionConfig,
    pub totp: TotpConfig,
    pub mtan: MtanConfig,
    /// The application whose flow a first step called without an application starts.
    pub default_application: String,
    pub applications: Vec<Application>,
    pub flows: Vec<AuthenticationFlow>,
}

impl Default for AuthenticationConfig {
    fn default() -> Self {
        Self {
            enumeration_protection: false,
            response_time_ms: 1000,
            temporary_locking: TemporaryLockingConfig::default(),
            password_method_id: "PASSWORD".into(),
            session: AuthSessionConfig::default(),
            totp: TotpConfig::default(),
            mtan: MtanConfig::default(),
            default_application: "default".into(),
            applications: vec![Application { id: "default".into(), flow: "login".into(), required_roles: vec![] }],
            flows: vec![AuthenticationFlow {
                id: "login".into(),
                steps: vec![Step::Password(PasswordStep {}), Step::Selection(SelectionStep::default())],
            }],
        }
    }
}

impl AuthenticationConfig {
    pub fn application(&self, id: &str) -> Option<&Application> {
        self.applications.iter().find(|a| a.id == id)
    }

    pub fn flow(&self, id: &str) -> Option<&AuthenticationFlow> {
        self.flows.iter().find(|f| f.id == id)
    }
}

/// Something users log in to: it names the flow that authenticates them and the roles they need.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Application {
    pub id: String,
    pub flow: String,
    /// A user without every one of these roles is refused (`USER_ROLE_MISSING`).
    #[serde(default)]
    pub required_roles: Vec<String>,
}

impl Application {
    /// Whether an authenticated session of `user` may use the application.
    pub fn admits(&self, user: &crate::user::User) -> bool {
        self.required_roles.iter().all(|r| user.roles.contains(r))
    }
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct AuthenticationFlow {
    pub id: String,
    pub steps: Vec<Step>,
}

/// After n failures a user waits `base_ms × factor^(n−1) + additional_ms × (n−1)` before the next try.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct TemporaryLockingConfig {
    pub enabled: bool,
    pub base_ms: u64,
    pub factor: f64,
    pub additional_ms: u64,
    /// Upper bound of one delay.
    pub max_ms: u64,
}

impl Default for TemporaryLockingConfig {
    fn default() -> Self {
        Self { enabled: false, base_ms: 3000, factor: 1.0, additional_ms: 0, max_ms: 3_600_000 }
    }
}

impl TemporaryLockingConfig {
    /// The delay after `failures` consecutive failures (0 for none).
    pub fn delay_ms(&self, failures: i64) -> u64 {
        if !self.enabled {
            return 0;
        }
        growing_delay_ms(self.base_ms, self.factor, self.additional_ms, self.max_ms, failures)
    }
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct AuthSessionConfig {
    pub idle_timeout_seconds: u64,
    pub max_lifetime_seconds: u64,
    /// Sensitive changes (removing TOTP, the SMS phone, a new authenticator, secret answers) need the user to
    /// have proved who they are within this time: at login, or again with the password (a step-up).
    pub step_up_seconds: u64,
}

impl Default for AuthSessionConfig {
    fn default() -> Self {
        Self { idle_timeout_seconds: 1800, max_lifetime_seconds: 12 * 3600, step_up_seconds: 300 }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum TotpAlgorithm {
    Sha1,
    Sha256,
    Sha512,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct TotpConfig {
    /// Shown in authenticator apps.
    pub issuer: String,
    pub algorithm: TotpAlgorithm,
    pub digits: usize,
    pub period_seconds: u64,
    /// Time steps accepted before and after the current one (clock drift).
    pub skew_steps: u8,
    pub method_id: String,
    /// An enrollment not confirmed within this time must be started again.
    pub enrollment_timeout_seconds: u64,
}

impl Default for TotpConfig {
    fn default() -> Self {
        Self {
            issuer: "Gatehouse".into(),
            algorithm: TotpAlgorithm::Sha1,
            digits: 6,
            period_seconds: 30,
            skew_steps: 1,
            method_id: "OTP".into(),
            enrollment_timeout_seconds: 600,
        }
    }
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct MtanConfig {
    pub method_id: String,
    pub otp: OtpConfig,
    /// Wrong answers tolerated per code: 0 means one try per code (the most secure).
    pub max_wrong_checks: u32,
    pub max_resends: u32,
}

impl Default for MtanConfig {
    fn default() -> Self {
        Self {
            method_id: "MTAN".into(),
            otp: OtpConfig { length: 6, alphabet: "0123456789".into(), validity_seconds: 300 },
            max_wrong_checks: 2,
            max_resends: 2,
        }
    }
}

/// The Gatehouse authenticator (push approval with number matching, offline QR codes).
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct AuthenticatorConfig {
    /// The URL devices reach this server at (put into activation URIs), when it differs from
    /// `server.public_url` (e.g. a separate device endpoint).
    pub public_url: Option<String>,
    /// How long an activation code (and its QR code) is valid.
    pub activation_timeout_seconds: u64,
    /// How long a push approval request waits for a decision.
    pub approval_timeout_seconds: u64,
    /// How long one status poll (browser) or pending-requests poll (device) waits for news.
    pub poll_wait_seconds: u64,
    /// Failed-attempt counter of denials and wrong offline codes.
    pub method_id: String,
}

impl Default for AuthenticatorConfig {
    fn default() -> Self {
        Self {
            public_url: None,
            activation_timeout_seconds: 300,
            approval_timeout_seconds: 120,
            poll_wait_seconds: 20,
            method_id: "APP_2FA".into(),
        }
    }
}

/// One configured flow as the engine runs it, whatever its kind.
#[derive(Debug, Clone, Copy)]
pub struct FlowDef<'a> {
    pub id: &'a str,
    pub kind: crate::flow::FlowKind,
    pub steps: &'a [Step],
    /// Who may run a public self-service flow.
    pub restrictions: Option<&'a Restrictions>,
    /// The settings of a self-registration flow.
    pub registration: Option<&'a super::registration::RegistrationFlow>,
}

impl Config {
    /// The flow `id` of `kind`, if configured.
    pub fn flow(&self, kind: crate::flow::FlowKind, id: &str) -> Option<FlowDef<'_>> {
        use crate::flow::FlowKind;
        match kind {
            FlowKind::Authentication => self.authentication.flow(id).map(|f| FlowDef {
                id: &f.id,
                kind,
                steps: &f.steps,
                restrictions: None,
                registration: None,
            }),
            FlowKind::PublicSelfService => self.public_self_service.flow(id).map(|f| FlowDef {
                id: &f.id,
                kind,
                steps: &f.steps,
                restrictions: Some(&f.restrictions),
                registration: None,
            }),
            FlowKind::SelfRegistration => self.self_registration.flow(id).map(|f| FlowDef {
                id: &f.id,
                kind,
                steps: &f.steps,
                restrictions: None,
                registration: Some(f),
            }),
            FlowKind::ProtectedSelfService | FlowKind::TransactionApproval => None,
        }
    }

    /// Every configured flow, with the key path of its definition.
    pub fn all_flows(&self) -> Vec<(String, FlowDef<'_>)> {
        let mut out = Vec::new();
        for (i, f) in self.authentication.flows.iter().enumerate() {
            if let Some(def) = self.flow(crate::flow::FlowKind::Authentication, &f.id) {
                out.push((format!("authentication.flows[{i}]"), FlowDef { steps: &f.steps, ..def }));
            }
        }
        for (i, f) in self.public_self_service.flows.iter().enumerate() {
            if let Some(def) = self.flow(crate::flow::FlowKind::PublicSelfService, &f.id) {
                out.push((format!("public_self_service.flows[{i}]"), FlowDef { steps: &f.steps, ..def }));
            }
        }
        for (i, f) in self.self_registration.flows.iter().enumerate() {
            if let Some(def) = self.flow(crate::flow::FlowKind::SelfRegistration, &f.id) {
                out.push((format!("self_registration.flows[{i}]"), FlowDef { steps: &f.steps, ..def }));
            }
        }
        out
    }
}
