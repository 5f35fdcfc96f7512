//! The widget: a script the application puts on its own two-step page. It runs in the person's browser, so it
//! carries no API key: the application's server asks for a ticket (with its key) naming the person, and the
//! widget shows that ticket back. Tickets are sealed with the server key — the browser can neither read whom
//! they name nor forge one for somebody else — and expire after a few minutes; each works for its own
//! application only.

use serde::{Deserialize, Serialize};

use super::Applications;
use crate::authenticator::{new_number, number_choices};
use crate::clock::Millis;
use crate::crypto::ServerKey;
use crate::ports::{Application, Approval};
use crate::random::Random;
use crate::user::User;

/// A ticket works for ten minutes: long enough to find the phone, short enough that a copied page goes stale.
pub const TICKET_LIFETIME_MS: i64 = 10 * 60_000;
const TICKET_CONTEXT: &str = "gatehouse/widget-ticket/v1";

/// Whom an application's widget may ask, until when.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WidgetTicket {
    pub app_id: String,
    pub user_id: String,
    /// The address the application saw the person log in from (shown on the device).
    pub ip: Option<String>,
    pub expires_at: Millis,
}

impl WidgetTicket {
    pub fn seal(&self, key: &ServerKey, random: &dyn Random) -> String {
        key.seal(random, TICKET_CONTEXT, &serde_json::to_vec(self).unwrap_or_default())
    }

    /// The ticket `text` seals, if it is genuine, for `app_id`, and not expired at `now`.
    pub fn open(key: &ServerKey, text: &str, app_id: &str, now: Millis) -> Option<Self> {
        if text.len() > 1024 {
            return None;
        }
        let bytes = key.open(TICKET_CONTEXT, text.trim()).ok()?;
        let ticket: Self = serde_json::from_slice(&bytes).ok()?;
        (ticket.app_id == app_id && now < ticket.expires_at).then_some(ticket)
    }
}

impl Applications<'_> {
    /// A widget ticket for `user`, enrolled by `app`.
    pub fn widget_ticket(&self, app: &Application, user: &User, ip: Option<&str>) -> (String, Millis) {
        let expires_at = self.clock.now_ms() + TICKET_LIFETIME_MS;
        let ticket =
            WidgetTicket { app_id: app.id.clone(), user_id: user.id.clone(), ip: ip.map(str::to_owned), expires_at };
        (ticket.seal(self.key, self.random), expires_at)
    }

    /// The widget's push request: like a server-to-server one, but with number matching — the widget shows the
    /// number and the person picks it on the phone, so approving somebody else's attempt by reflex fails.
    pub fn widget_request(&self, app: &Application, user: &User, ip: Option<&str>, expires_at: Millis) -> Approval {
        let mut approval = self.login_request(app, user, serde_json::json!({ "ip": ip }), expires_at);
        approval.number = new_number(self.random);
        approval.choices = number_choices(self.random, approval.number);
        approval
    }
}

/// Where the widget sends the browser with an access token: the application's callback URL with `token` added
/// to its query.
pub fn callback_with_token(app: &Application, token: &str) -> Option<String> {
    let url = app.callback_url.as_deref()?;
    let (base, fragment) = url.split_once('#').map_or((url, None), |(b, f)| (b, Some(f)));
    let joiner = if base.contains('?') { '&' } else { '?' };
    let mut out = format!("{base}{joiner}token={token}");
    if let Some(f) = fragment {
        out.push('#');
        out.push_str(f);
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use rand::SeedableRng;

    use super::*;
    use crate::random::SeededRandom;

    fn key() -> ServerKey {
        ServerKey::from_bytes(&[7u8; 32]).unwrap()
    }

    fn ticket() -> WidgetTicket {
        WidgetTicket { app_id: "app1".into(), user_id: "u1".into(), ip: Some("203.0.113.9".into()), expires_at: 10_000 }
    }

    #[test]
    fn a_ticket_opens_for_its_application_until_it_expires() {
        let r = SeededRandom::new(rand_chacha::ChaCha20Rng::seed_from_u64(3));
        let sealed = ticket().seal(&key(), &r);
        assert!(!sealed.contains("u1") && !sealed.contains("203.0.113.9"), "the browser cannot read it");
        assert_eq!(WidgetTicket::open(&key(), &sealed, "app1", 9_999), Some(ticket()));
        assert_eq!(WidgetTicket::open(&key(), &sealed, "app1", 10_000), None, "expired");
        assert_eq!(WidgetTicket::open(&key(), &sealed, "app2", 0), None, "another application's");
        let other = ServerKey::from_bytes(&[8u8; 32]).unwrap();
        assert_eq!(WidgetTicket::open(&other, &sealed, "app1", 0), None, "another server's");
        let mut forged = sealed.clone().into_bytes();
        forged[30] = if forged[30] == b'A' { b'B' } else { b'A' };
        assert_eq!(WidgetTicket::open(&key(), &String::from_utf8(forged).unwrap(), "app1", 0), None);
        assert_eq!(WidgetTicket::open(&key(), "not a ticket", "app1", 0), None);
    }

    #[test]
    fn the_token_joins_the_callback_query() {
        let mut app = Application {
            id: "a".into(),
            name: "Shop".into(),
            origin: "https://shop.example".into(),
            callback_url: Some("https://shop.example/login/callback".into()),
            created_at: 0,
            key_rotated_at: None,
            revoked_at: None,
        };
        assert_eq!(callback_with_token(&app, "T").unwrap(), "https://shop.example/login/callback?token=T");
        app.callback_url = Some("https://shop.example/cb?next=%2Fa#top".into());
        assert_eq!(callback_with_token(&app, "T").unwrap(), "https://shop.example/cb?next=%2Fa&token=T#top");
        app.callback_url = None;
        assert_eq!(callback_with_token(&app, "T"), None);
    }
}
