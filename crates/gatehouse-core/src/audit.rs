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
    /// The event as the admin API and `gatehouse audit` show it (camelCase, the time as in documents).
    pub fn view(&self) -> serde_json::Value {
        serde_json::json!({
            "id": self.id,
            "at": crate::clock::format_timestamp(self.at),
            "event": self.event,
            "actor": self.actor,
            "userId": self.user_id,
            "username": self.username,
            "flowId": self.flow_id,
            "sessionId": self.session_id,
            "ip": self.ip,
            "outcome": self.outcome,
            "details": self.details,
        })
    }

    /// Counts the event for Prometheus: every event by name and outcome, logins by outcome, locks by reason.
    fn count(&self) {
        let labels = [("event", self.event.clone()), ("outcome", self.outcome.clone())];
        metrics::counter!("gatehouse_audit_events_total", &labels).increment(1);
        match self.event.as_str() {
            "login.succeeded" => metrics::counter!("gatehouse_logins_total", "outcome" => "ok").increment(1),
            "login.failed" => {
                metrics::counter!("gatehouse_logins_total", "outcome" => self.outcome.clone()).increment(1)
            }
            "otp.sent" => metrics::counter!("gatehouse_otps_total", "result" => "queued").increment(1),
            "otp.verified" => metrics::counter!("gatehouse_otps_total", "result" => "verified").increment(1),
            "otp.failed" => metrics::counter!("gatehouse_otps_total", "result" => "failed").increment(1),
            _ => {}
        }
        // A lock is its own event, or (in public flows) told in the event of the step that caused it.
        let lock = if self.event == "user.locked" { Some(&self.details) } else { None }
            .or_else(|| Some(&self.details["counter"]).filter(|c| c["event"] == "user.locked"));
        if let Some(details) = lock {
            let reason = details["reason"].as_str().unwrap_or("unknown").to_owned();
            metrics::counter!("gatehouse_locks_total", "reason" => reason).increment(1);
        }
    }

    /// Logs the event on the `audit` target so that log shipping sees it too, and counts it.
    pub fn log(&self) {
        self.count();
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

/// Which way a query walks the trail: newest first (`audit list`), or oldest first after a point (`audit tail`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum AuditOrder {
    #[default]
    NewestFirst,
    OldestFirst,
}

/// Where a page ended: the last event's time and id (events of the same millisecond are ordered by id).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditCursor {
    pub at: Millis,
    pub id: String,
}

impl AuditCursor {
    pub fn of(event: &AuditEvent) -> Self {
        Self { at: event.at, id: event.id.clone() }
    }

    /// `<at>-<id>`: opaque to clients, but readable in a log.
    pub fn encode(&self) -> String {
        format!("{}-{}", self.at, self.id)
    }

    pub fn decode(text: &str) -> Option<Self> {
        let (at, id) = text.split_once('-')?;
        let valid_id = !id.is_empty() && id.len() <= 64 && id.chars().all(|c| c.is_ascii_alphanumeric());
        Some(Self { at: at.parse().ok()?, id: id.to_owned() }).filter(|_| valid_id)
    }
}

/// The filters of an audit query as text, before [`AuditQuery::parse`].
#[derive(Debug, Clone, Copy, Default)]
pub struct AuditFilters<'a> {
    pub user: Option<&'a str>,
    pub action: Option<&'a str>,
    pub outcome: Option<&'a str>,
    pub from: Option<&'a str>,
    pub to: Option<&'a str>,
    pub limit: Option<u32>,
    pub cursor: Option<&'a str>,
}

/// A filter over the audit trail (every field optional), one page at a time.
#[derive(Debug, Clone, Default)]
pub struct AuditQuery {
    /// A user id or a recorded login name.
    pub user: Option<String>,
    /// An event name (`user.locked`), or a prefix ending in `.` (`user.`).
    pub action: Option<String>,
    pub outcome: Option<String>,
    /// Events at or after this time.
    pub from: Option<Millis>,
    /// Events before this time.
    pub to: Option<Millis>,
    /// Continue after this event (exclusive), in `order`.
    pub after: Option<AuditCursor>,
    pub order: AuditOrder,
    /// At most this many events (1 ..= [`AuditQuery::MAX_LIMIT`]).
    pub limit: u32,
}

impl AuditQuery {
    pub const DEFAULT_LIMIT: u32 = 100;
    pub const MAX_LIMIT: u32 = 1000;

    /// The action as an exact event name and as a prefix: exactly one of the two is set when an action is.
    pub fn action_parts(&self) -> (Option<&str>, Option<&str>) {
        match self.action.as_deref() {
            Some(a) if a.ends_with('.') => (None, Some(a)),
            Some(a) => (Some(a), None),
            None => (None, None),
        }
    }

    /// A query from text filters as an operator types them (admin API parameters, CLI options); the error
    /// names the parameter.
    pub fn parse(filters: &AuditFilters<'_>, order: AuditOrder) -> Result<Self, (&'static str, String)> {
        let time = |name: &'static str, text: Option<&str>| -> Result<Option<Millis>, (&'static str, String)> {
            text.map(|t| {
                crate::clock::parse_timestamp(t)
                    .ok_or((name, format!("`{t}` is no time (RFC 3339 or milliseconds since the epoch)")))
            })
            .transpose()
        };
        let limit = match filters.limit {
            None => 0,
            Some(n) if (1..=Self::MAX_LIMIT).contains(&n) => n,
            Some(n) => return Err(("limit", format!("{n} is not between 1 and {}", Self::MAX_LIMIT))),
        };
        let after = filters
            .cursor
            .map(|c| AuditCursor::decode(c).ok_or(("cursor", format!("`{c}` is no cursor of this API"))))
            .transpose()?;
        let text = |v: Option<&str>| v.map(str::trim).filter(|v| !v.is_empty()).map(str::to_owned);
        Ok(Self {
            user: text(filters.user),
            action: text(filters.action),
            outcome: text(filters.outcome),
            from: time("from", filters.from)?,
            to: time("to", filters.to)?,
            after,
            order,
            limit,
        })
    }

    pub fn limit(&self) -> u32 {
        if self.limit == 0 { Self::DEFAULT_LIMIT } else { self.limit.min(Self::MAX_LIMIT) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_refuse_garbage() {
        let c = AuditCursor { at: 1_700_000_000_123, id: "0a1b2c".into() };
        assert_eq!(AuditCursor::decode(&c.encode()), Some(c));
        for bad in ["", "12", "x-abc", "12-", "12-a b", "12-a'b"] {
            assert_eq!(AuditCursor::decode(bad), None, "{bad}");
        }
    }

    #[test]
    fn filters_are_parsed_and_bad_ones_named() {
        let f = AuditFilters {
            user: Some(" ann "),
            from: Some("2021-03-02T21:25:22.970+01:00"),
            ..AuditFilters::default()
        };
        let q = AuditQuery::parse(&f, AuditOrder::NewestFirst).unwrap();
        assert_eq!((q.user.as_deref(), q.from), (Some("ann"), Some(1_614_716_722_970)));
        for (bad, name) in [
            (AuditFilters { to: Some("soon"), ..AuditFilters::default() }, "to"),
            (AuditFilters { limit: Some(0), ..AuditFilters::default() }, "limit"),
            (AuditFilters { limit: Some(1001), ..AuditFilters::default() }, "limit"),
            (AuditFilters { cursor: Some("nope"), ..AuditFilters::default() }, "cursor"),
        ] {
            assert_eq!(AuditQuery::parse(&bad, AuditOrder::NewestFirst).unwrap_err().0, name);
        }
    }

    #[test]
    fn actions_are_names_or_prefixes_and_limits_are_bounded() {
        let q = AuditQuery { action: Some("user.".into()), ..AuditQuery::default() };
        assert_eq!(q.action_parts(), (None, Some("user.")));
        let q = AuditQuery { action: Some("user.locked".into()), limit: 5000, ..AuditQuery::default() };
        assert_eq!(q.action_parts(), (Some("user.locked"), None));
        assert_eq!(q.limit(), AuditQuery::MAX_LIMIT);
        assert_eq!(AuditQuery::default().limit(), AuditQuery::DEFAULT_LIMIT);
    }
}
