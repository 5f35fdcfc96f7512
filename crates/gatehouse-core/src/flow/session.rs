//! Flow sessions: what the database holds for one running flow.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

use crate::clock::Millis;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FlowKind {
    PublicSelfService,
    Authentication,
}

impl FlowKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::PublicSelfService => "public_self_service",
            Self::Authentication => "authentication",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "public_self_service" => Some(Self::PublicSelfService),
            "authentication" => Some(Self::Authentication),
            _ => None,
        }
    }

    /// The attribute that names the next step: authentication flows say `nextAuthStep`.
    pub fn next_step_attribute(self) -> &'static str {
        match self {
            Self::PublicSelfService => "nextStep",
            Self::Authentication => "nextAuthStep",
        }
    }

    /// `data.type` of the documents of this kind of flow.
    pub fn document_type(self) -> &'static str {
        match self {
            Self::PublicSelfService => "public-self-service.session",
            Self::Authentication => "authentication.session",
        }
    }
}

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
pub struct FlowState {
    /// Index of the current (interactive) step; equal to the step count once the flow is done.
    pub step: usize,
    pub subject: Option<Subject>,
    /// Set when the identified user must not get through: every verification answer is rejected.
    pub stealth: bool,
    /// An identity verification step was passed: restrictions are re-checked on every call from now on.
    pub verified: bool,
    /// Authentication method ids of the factor steps passed; their counters reset when the flow succeeds.
    pub methods_passed: BTreeSet<String>,
    pub scratch: Scratch,
}

/// Who the flow is about.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Subject {
    /// The name as entered.
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
    App(PssAppChallenge),
}

/// The authenticator request of a self-service flow. Without an approval (stealth mode) the step waits
/// until `expires_at` like a request nobody answers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PssAppChallenge {
    pub approval_id: Option<String>,
    pub number: u32,
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
