//! Self-registration (`[self_registration]`): the flows a visitor registers through, and the configuration of
//! the steps only registration flows hold (reference §3, §5.3).

use serde::{Deserialize, Serialize};

use super::steps::{OtpConfig, Step};

#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct SelfRegistrationConfig {
    /// The flow a registration runs when the client selects none (a data call without `select`).
    pub default_flow: Option<String>,
    pub captcha: CaptchaConfig,
    pub flows: Vec<RegistrationFlow>,
}

impl SelfRegistrationConfig {
    pub fn flow(&self, id: &str) -> Option<&RegistrationFlow> {
        self.flows.iter().find(|f| f.id == id)
    }
}

/// The proof-of-work CAPTCHA (ALTCHA's challenge format): a client must find the number in `0..=max_number`
/// whose SHA-256 with the salt is the challenge — on average `max_number / 2` hashes.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct CaptchaConfig {
    pub max_number: u64,
    /// A challenge must be solved and used within this time.
    pub validity_seconds: u64,
}

impl Default for CaptchaConfig {
    fn default() -> Self {
        Self { max_number: 100_000, validity_seconds: 600 }
    }
}

pub const AWAITING_ADMIN_APPROVAL: &str = "LockReason.AwaitingAdminApproval";

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RegistrationFlow {
    pub id: String,
    /// The account is locked with this reason from the start; only a `user-unlock` step before the last
    /// `user-persisting` step stores it unlocked.
    #[serde(default = "default_lock_reason")]
    pub initial_lock_reason: String,
    /// Context data items that must be unique across all users (usernames and aliases always are).
    #[serde(default)]
    pub additional_unique_items: Vec<String>,
    /// An address that already has an account is treated like a new one at the first channel verification: the
    /// same answers and work, a notice to the owner instead of a code, and a verification nobody can pass.
    #[serde(default)]
    pub stealth_mode: bool,
    pub steps: Vec<Step>,
}

fn default_lock_reason() -> String {
    AWAITING_ADMIN_APPROVAL.to_owned()
}

impl RegistrationFlow {
    /// The item of the first channel verification: the one stealth mode protects.
    pub fn first_verified_item(&self) -> Option<&str> {
        self.steps.iter().find_map(|s| match s {
            Step::EmailVerification(v) => Some(v.email_item.as_str()),
            Step::PhoneNumberVerification(v) => Some(v.phone_item.as_str()),
            _ => None,
        })
    }

    /// Every data item of the flow's data steps.
    pub fn items(&self) -> impl Iterator<Item = &DataItem> {
        self.steps
            .iter()
            .filter_map(|s| if let Step::UserDataRegistration(d) = s { Some(&d.items) } else { None })
            .flatten()
    }
}

/// A step of data items the visitor fills in (`registration/data/`, `validate/`, `continue`).
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct UserDataRegistrationStep {
    pub items: Vec<DataItem>,
    /// Rules across items, checked by `validate` and `continue`.
    pub validators: Vec<StepValidator>,
    /// The first data call of the step must carry a solved CAPTCHA.
    pub captcha: bool,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct DataItem {
    /// The name in the data call and in the user's context data.
    pub name: String,
    #[serde(default)]
    pub role: ItemRole,
    #[serde(default)]
    pub required: bool,
    #[serde(default)]
    pub validators: Vec<Validator>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ItemRole {
    /// Context data only.
    #[default]
    Context,
    /// The login name the visitor chooses.
    Username,
    /// Context data that is also a login name, unique across all users (e.g. the email address).
    Alias,
}

/// A rule for one item's value.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(tag = "type", rename_all = "kebab-case", deny_unknown_fields)]
pub enum Validator {
    /// The whole value matches the regular expression.
    Regex {
        pattern: Pattern,
    },
    EmailAddress,
    /// A valid international number (`+41 79 …`); stored in E.164 form.
    PhoneNumber,
    /// Length in characters.
    Length {
        #[serde(default)]
        min: Option<usize>,
        #[serde(default)]
        max: Option<usize>,
    },
    /// A calendar date `YYYY-MM-DD`, optionally within bounds (inclusive).
    Date {
        #[serde(default)]
        min: Option<String>,
        #[serde(default)]
        max: Option<String>,
    },
    /// Every character is one of these.
    AllowedCharacters {
        characters: String,
    },
}

impl Validator {
    /// `meta.detail` of an error from this validator.
    pub fn detail(&self) -> &'static str {
        match self {
            Self::Regex { .. } => "REGEX",
            Self::EmailAddress => "EMAIL_ADDRESS",
            Self::PhoneNumber => "PHONE_NUMBER",
            Self::Length { .. } => "LENGTH",
            Self::Date { .. } => "DATE",
            Self::AllowedCharacters { .. } => "ALLOWED_CHARACTERS",
        }
    }
}

/// A rule across items of one data step.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(tag = "type", rename_all = "kebab-case", deny_unknown_fields)]
pub enum StepValidator {
    /// The items hold the same value (e.g. an address typed twice); the error points at the last of them.
    Equal { items: Vec<String> },
}

/// A regular expression compiled when the configuration loads, matched against the whole value.
#[derive(Debug, Clone)]
pub struct Pattern {
    source: String,
    regex: regex::Regex,
}

impl Pattern {
    pub fn new(source: &str) -> Result<Self, regex::Error> {
        let regex = regex::RegexBuilder::new(&format!("^(?:{source})$")).size_limit(1 << 20).build()?;
        Ok(Self { source: source.to_owned(), regex })
    }

    pub fn is_match(&self, value: &str) -> bool {
        self.regex.is_match(value)
    }

    pub fn as_str(&self) -> &str {
        &self.source
    }
}

impl Serialize for Pattern {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.source)
    }
}

impl<'de> Deserialize<'de> for Pattern {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let source = String::deserialize(d)?;
        Self::new(&source).map_err(serde::de::Error::custom)
    }
}

/// Generates the username (non-interactive).
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct UsernameGenerationStep {
    pub generator: UsernameGenerator,
}

#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(tag = "type", rename_all = "kebab-case", deny_unknown_fields)]
pub enum UsernameGenerator {
    /// A random UUID (version 4).
    #[default]
    Uuid,
    /// Random characters from a pattern of literals and classes with counts, e.g. `[A-Z]{2}[0-9]{6}`.
    Pattern { pattern: String },
}

/// A code by mail (or SMS) to an address the visitor entered: proves it is theirs. In stealth mode, when the
/// flow's first verified item already belongs to an account, the owner gets a notice instead of a code.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct RegistrationVerificationStep {
    pub email_item: String,
    pub otp: OtpConfig,
    pub max_failed_attempts: u32,
    pub max_resends: u32,
    pub template: String,
    /// What the owner of an address that is already registered receives (stealth mode).
    pub notice_template: String,
}

impl Default for RegistrationVerificationStep {
    fn default() -> Self {
        Self {
            email_item: "email".into(),
            otp: OtpConfig { length: 8, alphabet: "0123456789".into(), validity_seconds: 900 },
            max_failed_attempts: 5,
            max_resends: 3,
            template: "registration-otp".into(),
            notice_template: "registration-notice".into(),
        }
    }
}

/// Phone verification: the same settings, named for the phone.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct PhoneVerificationStep {
    pub phone_item: String,
    pub otp: OtpConfig,
    pub max_failed_attempts: u32,
    pub max_resends: u32,
    pub template: String,
    pub notice_template: String,
}

impl Default for PhoneVerificationStep {
    fn default() -> Self {
        Self {
            phone_item: "phone".into(),
            otp: OtpConfig { length: 8, alphabet: "0123456789".into(), validity_seconds: 600 },
            max_failed_attempts: 5,
            max_resends: 2,
            template: "registration-sms-otp".into(),
            notice_template: "registration-sms-notice".into(),
        }
    }
}

/// The visitor's password (`registration/password/`), checked against the policy with the data entered.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct PasswordRegistrationStep {}

/// Static roles for the new account (non-interactive).
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct RoleAssignmentStep {
    pub roles: Vec<String>,
}

/// The account's preferred authentication method, e.g. `APP_2FA` (non-interactive).
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ActiveAuthMethodStep {
    pub method: String,
}

/// Enrolls the Gatehouse authenticator for the persisted account: the answer carries the activation URI, its QR
/// code and the typed code; the flow waits (polled) until a device activated, at most `enrollment_timeout_seconds`.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct App2faActivationStep {
    pub enrollment_timeout_seconds: u64,
}

impl Default for App2faActivationStep {
    fn default() -> Self {
        Self { enrollment_timeout_seconds: 600 }
    }
}

/// Stores the account (non-interactive): `insert` creates it in one transaction (fails on a taken name),
/// `update` writes what later steps changed to the account an earlier step created.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct UserPersistingStep {
    pub strategy: PersistStrategy,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum PersistStrategy {
    #[default]
    Insert,
    Update,
}
