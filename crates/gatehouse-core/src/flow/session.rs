//! Flow sessions: what the database holds for one running flow.

use serde::{Deserialize, Serialize};

use crate::clock::Millis;
pub use crate::flow::kind::FlowKind;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SessionStatus {
    Active,
    Completed,
    Terminated,
}

impl SessionStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Active => "active",
            Self::Completed => "completed",
            Self::Terminated => "terminated",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "active" => Some(Self::Active),
            "completed" => Some(Self::Completed),
            "terminated" => Some(Self::Terminated),
            _ => None,
        }
    }
}

#[derive(Debug, Clone)]
pub struct NewFlowSession {
    /// Public, non-secret id shown as `data.id`.
    pub id: String,
    /// Keyed hash of the cookie token; the token itself is never stored.
    pub token_hash: String,
    pub kind: FlowKind,
    pub flow_id: String,
    pub state: serde_json::Value,
    pub status: SessionStatus,
    pub created_at: Millis,
    /// The session's last call: its creation, or later for a flow started without a row.
    pub last_seen_at: Millis,
    pub expires_at: Millis,
}

#[derive(Debug, Clone)]
pub struct FlowSessionRecord {
    pub id: String,
    pub kind: FlowKind,
    pub flow_id: String,
    pub state: serde_json::Value,
    pub status: SessionStatus,
    pub version: i64,
    pub created_at: Millis,
    pub last_seen_at: Millis,
    pub expires_at: Millis,
}

/// The engine's view of a running flow, stored as JSON in the session row.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct FlowState {
    /// Index of the current top-level step; equal to the step count once the flow is done.
    pub step: usize,
    /// Inside the option chosen at a selection step (the current top-level step).
    pub branch: Option<Branch>,
    pub subject: Option<Subject>,
    /// Set when the identified user must not get through: every verification answer is rejected.
    pub stealth: bool,
    /// An identity verification step was passed: restrictions are re-checked on every call from now on.
    pub verified: bool,
    /// Authentication method ids of the factor steps passed, in order; their counters reset when the flow
    /// succeeds.
    pub methods_passed: Vec<String>,
    /// The application an authentication flow was started for.
    pub application: Option<String>,
    /// A login started by a completed self-service flow: the subject is known, the password step takes the
    /// password alone.
    pub seeded: bool,
    /// What a self-registration flow collected so far: lives only here until a persisting step stores it, so an
    /// abandoned registration leaves nothing behind once its session is purged.
    pub registration: Option<Draft>,
    pub scratch: Scratch,
}

/// A registration in progress.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Draft {
    /// The account's id, chosen when the flow starts: a persisting step that runs again (its answer lost) finds
    /// the account it created instead of making a second one.
    pub user_id: String,
    pub username: Option<String>,
    /// The username came from a generator: a collision when storing draws a new one.
    pub generated_username: bool,
    /// Context data items (aliases included), as validated.
    pub items: std::collections::BTreeMap<String, String>,
    pub password_hash: Option<String>,
    pub roles: Vec<String>,
    pub auth_method: Option<String>,
    /// A `user-unlock` step ran: the account is stored unlocked.
    pub unlocked: bool,
    pub persisted: bool,
    /// Items whose value a channel verification proved.
    pub verified_items: Vec<String>,
}

/// A position inside a selection's option.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Branch {
    pub option: usize,
    pub step: usize,
}

/// Who the flow is about.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Subject {
    /// The name as entered (normalised).
    pub login: String,
    /// `None` for an unknown user (stealth).
    pub user_id: Option<String>,
}

/// Per-step working data of the current step.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Scratch {
    #[default]
    None,
    Otp(OtpChallenge),
    App(AppChallenge),
    /// The option ids a selection step offered.
    Selection {
        options: Vec<String>,
    },
    /// The secret questions asked, and wrong answer sets so far.
    SecretQuestions {
        questions: Vec<String>,
        failed: u32,
    },
    /// A registration data step: whether its CAPTCHA was solved.
    Data {
        captcha_passed: bool,
    },
    /// An authenticator enrollment of a registration, waiting for a device.
    Activation {
        started_at: Millis,
        expires_at: Millis,
    },
}

/// The authenticator request of a flow. Without an approval (stealth mode, no device) the step waits until
/// `expires_at` like a request nobody answers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AppChallenge {
    pub approval_id: Option<String>,
    /// The number the browser shows for number matching.
    pub number: u32,
    /// The offline challenge, once the client asked for one.
    pub offline: Option<String>,
    pub expires_at: Millis,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OtpChallenge {
    /// Keyed hash of the code (bound to the flow session); in stealth mode the hash of nothing anyone knows.
    pub code_hash: String,
    pub expires_at: Millis,
    pub failed: u32,
    pub resends: u32,
}
