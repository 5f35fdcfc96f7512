//! A flow that has only been started — a self-service `select`, a login's initialization — has nothing to
//! remember but which flow it is and its first state, and no user yet. Such a flow lives in its cookie, sealed
//! with the server key, and gets a database row only with its first call that does something. Starting flows
//! (the most frequent and the cheapest call an anonymous client can make) thus writes nothing; the start's audit
//! event travels in the cookie and is written with that first call's outcome.
//!
//! Replaying the sealed cookie gains nothing: it opens no user's data and is what calling `select` again would
//! give. Once its flow has a row, a replay's first call finds the id taken and is refused like a concurrent call.

use gatehouse_core::audit::AuditEvent;
use gatehouse_core::clock::Millis;
use gatehouse_core::flow::Turn;
use gatehouse_core::flow::session::{FlowKind, FlowState, SessionStatus};
use gatehouse_core::ports::Effect;
use serde::{Deserialize, Serialize};

use crate::state::AppState;

/// Cookie values of pending flows start with this; a stored flow's cookie is a random token without a dot.
const PREFIX: &str = "p.";
/// Sealing context: a sealed value of another purpose never opens as a pending flow.
const CONTEXT: &str = "gatehouse pending flow v1";

#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct PendingFlow {
    pub id: String,
    pub kind: FlowKind,
    pub flow_id: String,
    pub state: FlowState,
    pub created_at: Millis,
    pub expires_at: Millis,
    /// The start's audit events, written with the first call.
    pub audit: Vec<AuditEvent>,
}

impl PendingFlow {
    /// The pending flow a start's `turn` can be, if it can: still running, nobody identified, and nothing to
    /// write but audit events.
    pub fn from_start(
        kind: FlowKind,
        flow_id: &str,
        id: &str,
        turn: &Turn,
        created_at: Millis,
        expires_at: Millis,
    ) -> Option<Self> {
        if turn.status != SessionStatus::Active || turn.state.subject.is_some() {
            return None;
        }
        let audit = turn
            .effects
            .iter()
            .map(|e| match e {
                Effect::Audit(event) => Some(event.clone()),
                _ => None,
            })
            .collect::<Option<Vec<_>>>()?;
        Some(Self {
            id: id.to_owned(),
            kind,
            flow_id: flow_id.to_owned(),
            state: turn.state.clone(),
            created_at,
            expires_at,
            audit,
        })
    }

    /// The cookie value.
    pub fn seal(&self, state: &AppState) -> Option<String> {
        let json = serde_json::to_vec(self).ok()?;
        Some(format!("{PREFIX}{}", state.key.seal(state.random.as_ref(), CONTEXT, &json)))
    }

    /// `None`: not a pending flow's cookie (a stored flow's token), `Some(None)`: one that does not open (forged,
    /// another key), `Some(Some(_))`: the flow.
    pub fn open(state: &AppState, cookie: &str) -> Option<Option<Self>> {
        let sealed = cookie.strip_prefix(PREFIX)?;
        Some(state.key.open(CONTEXT, sealed).ok().and_then(|json| serde_json::from_slice(&json).ok()))
    }
}

#[cfg(test)]
mod tests {
    use gatehouse_core::flow::Outcome;

    use super::*;

    fn turn(effects: Vec<Effect>, status: SessionStatus) -> Turn {
        Turn {
            outcome: Outcome::Continue(None),
            state: FlowState::default(),
            status,
            effects,
            attributes: serde_json::Map::new(),
            session_token: None,
            lock_expiry: None,
            next_auth: None,
            renew_token: false,
        }
    }

    fn event() -> AuditEvent {
        AuditEvent {
            id: "e1".into(),
            at: 5,
            event: "flow.started".into(),
            actor: "anonymous".into(),
            user_id: None,
            username: None,
            flow_id: Some("password-reset".into()),
            session_id: Some("123".into()),
            ip: None,
            outcome: "ok".into(),
            details: serde_json::json!({}),
        }
    }

    #[test]
    fn only_a_running_flow_with_nothing_but_audit_to_write_stays_in_its_cookie() {
        let kind = FlowKind::PublicSelfService;
        let ok = turn(vec![Effect::Audit(event())], SessionStatus::Active);
        let pending = PendingFlow::from_start(kind, "f", "1", &ok, 5, 10).unwrap();
        assert_eq!(pending.audit, vec![event()]);
        let ended = turn(vec![Effect::Audit(event())], SessionStatus::Completed);
        assert!(PendingFlow::from_start(kind, "f", "1", &ended, 5, 10).is_none());
        let writes = turn(vec![Effect::ResetAllCounters { user_id: "u".into() }], SessionStatus::Active);
        assert!(PendingFlow::from_start(kind, "f", "1", &writes, 5, 10).is_none());
        let mut identified = turn(vec![], SessionStatus::Active);
        identified.state.subject =
            Some(gatehouse_core::flow::session::Subject { user_id: Some("u".into()), login: "alice".into() });
        assert!(PendingFlow::from_start(kind, "f", "1", &identified, 5, 10).is_none());
    }
}
