//! Audit events: who did what, when, from where, with which outcome. Never a secret.

use serde::{Deserialize, Serialize};

use crate::clock::Millis;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditEvent {
    pub id: String,
    pub at: Millis,
    /// Dotted event name, e.g. `flow.started`, `otp.failed`, `user.locked`.
    pub event: String,
    /// `user:<name>`, `admin:cli`, `anonymous`.
    pub actor: String,
    pub user_id: Option<String>,
    /// The login name as entered or administered (may name a user that does not exist).
    pub username: Option<String>,
    pub flow_id: Option<String>,
    pub session_id: Option<String>,
    pub ip: Option<String>,
    pub outcome: String,
    /// Extra non-secret details.
    pub details: serde_json::Value,
}

impl AuditEvent {
    /// Logs the event on the `audit` target so that log shipping sees it too.
    pub fn log(&self) {
        tracing::info!(
            target: "audit",
            event = %self.event,
            actor = %self.actor,
            user_id = self.user_id.as_deref().unwrap_or(""),
            username = self.username.as_deref().unwrap_or(""),
            flow_id = self.flow_id.as_deref().unwrap_or(""),
            session_id = self.session_id.as_deref().unwrap_or(""),
            ip = self.ip.as_deref().unwrap_or(""),
            outcome = %self.outcome,
            details = %self.details,
        );
    }
}
