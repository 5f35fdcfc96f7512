//! Kinds of flows. A kind decides how a flow starts, how its answers are spelled and what completing it
//! means; which steps a flow may hold is declared by each step kind (`steps::allowed_kinds`).

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FlowKind {
    /// Login: ends in an authenticated session.
    Authentication,
    /// Password reset, self-unlock and other services for users who cannot log in.
    PublicSelfService,
    /// New accounts (not configurable yet).
    SelfRegistration,
    /// Services for a logged-in user (not configurable yet).
    ProtectedSelfService,
    /// Approval of a transaction by a second factor (not configurable yet).
    TransactionApproval,
}

impl FlowKind {
    pub const ALL: [Self; 5] = [
        Self::Authentication,
        Self::PublicSelfService,
        Self::SelfRegistration,
        Self::ProtectedSelfService,
        Self::TransactionApproval,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Authentication => "authentication",
            Self::PublicSelfService => "public_self_service",
            Self::SelfRegistration => "self_registration",
            Self::ProtectedSelfService => "protected_self_service",
            Self::TransactionApproval => "transaction_approval",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == s)
    }

    /// The attribute that names the next step: authentication flows say `nextAuthStep`.
    pub fn next_step_attribute(self) -> &'static str {
        match self {
            Self::Authentication => "nextAuthStep",
            _ => "nextStep",
        }
    }

    /// `data.type` of the documents of this kind of flow.
    pub fn document_type(self) -> &'static str {
        match self {
            Self::Authentication => "authentication.session",
            Self::PublicSelfService => "public-self-service.session",
            Self::SelfRegistration => "user-self-registration.session",
            Self::ProtectedSelfService => "protected-self-service.session",
            Self::TransactionApproval => "transaction-approval.session",
        }
    }

    /// Whether the flow's user may be unknown to the caller, so that nothing may tell a real user from an
    /// unknown one: a factor that locks the user answers like a wrong answer instead of `USER_LOCKED`. These are
    /// the public flows whose failures `lockout.public_flow_failures = "throttle"` keeps on counters of their own.
    pub fn hides_locks(self) -> bool {
        matches!(self, Self::PublicSelfService | Self::SelfRegistration)
    }
}
