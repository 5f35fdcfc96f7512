//! Messages are queued, never sent inline: the step that sends one writes it in its own transaction and a
//! worker delivers it later, so mail latency or an outage reveals nothing. The queued content is sealed with
//! the server key because it may carry a one-time code.

use serde::{Deserialize, Serialize};

use crate::clock::Millis;
use crate::crypto::{KeyError, ServerKey};
use crate::messages::RenderedMessage;
use crate::ports::{Channel, OutboxMessage};
use crate::random::{Random, random_id};

const SEAL_CONTEXT: &str = "gatehouse/outbox/v1";

/// What a delivery worker gets after opening a queued message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Envelope {
    pub to: String,
    pub subject: String,
    pub body: String,
    /// Template name, for logs (never the content).
    pub template: String,
}

fn seal(key: &ServerKey, random: &dyn Random, now: Millis, channel: Channel, envelope: &Envelope) -> OutboxMessage {
    // Serialising a struct of strings cannot fail.
    let plain = serde_json::to_vec(envelope).unwrap_or_default();
    OutboxMessage {
        id: random_id(random),
        channel,
        sealed: key.seal(random, SEAL_CONTEXT, &plain),
        created_at: now,
        claimed_until: None,
    }
}

fn envelope(to: &str, subject: String, body: &str, template: &str) -> Envelope {
    Envelope { to: to.to_owned(), subject, body: body.to_owned(), template: template.to_owned() }
}

pub fn seal_email(
    key: &ServerKey,
    random: &dyn Random,
    now: Millis,
    to: &str,
    template: &str,
    message: RenderedMessage,
) -> OutboxMessage {
    seal(key, random, now, Channel::Email, &envelope(to, message.subject, &message.body, template))
}

/// An SMS: the envelope's `body` is the text, `subject` stays empty.
pub fn seal_sms(
    key: &ServerKey,
    random: &dyn Random,
    now: Millis,
    to: &str,
    template: &str,
    text: &str,
) -> OutboxMessage {
    seal(key, random, now, Channel::Sms, &envelope(to, String::new(), text, template))
}

/// A letter: `to` is the recipient block (name and address lines), `body` the text.
pub fn seal_letter(
    key: &ServerKey,
    random: &dyn Random,
    now: Millis,
    recipient: &str,
    template: &str,
    text: &str,
) -> OutboxMessage {
    seal(key, random, now, Channel::Letter, &envelope(recipient, String::new(), text, template))
}

/// A job with nothing to send (see [`Channel::Discard`]), sealed like a real message of the same size.
pub fn seal_discard(key: &ServerKey, random: &dyn Random, now: Millis, template: &str, text: &str) -> OutboxMessage {
    seal(key, random, now, Channel::Discard, &envelope("", String::new(), text, template))
}

pub fn open(key: &ServerKey, message: &OutboxMessage) -> Result<Envelope, KeyError> {
    let plain = key.open(SEAL_CONTEXT, &message.sealed)?;
    serde_json::from_slice(&plain).map_err(|_| KeyError::Unseal)
}

/// Hides most of an address for logs: `j***@example.com`.
pub fn mask_address(address: &str) -> String {
    match address.split_once('@') {
        Some((local, domain)) => format!("{}***@{domain}", local.chars().next().unwrap_or('*')),
        None => "***".into(),
    }
}

#[cfg(test)]
mod tests {
    use rand::SeedableRng;

    use super::*;
    use crate::random::SeededRandom;

    #[test]
    fn sealed_mail_round_trips_and_hides_its_content() {
        let key = ServerKey::from_bytes(&[3u8; 32]).unwrap();
        let r = SeededRandom::new(rand_chacha::ChaCha20Rng::seed_from_u64(3));
        let m = RenderedMessage { subject: "Code".into(), body: "your code 12345678".into() };
        let queued = seal_email(&key, &r, 5, "jdoe@example.com", "email-otp", m);
        assert!(!queued.sealed.contains("12345678") && !queued.sealed.contains("jdoe"));
        let env = open(&key, &queued).unwrap();
        assert_eq!(env.to, "jdoe@example.com");
        assert_eq!(env.body, "your code 12345678");
        assert_eq!(mask_address("jdoe@example.com"), "j***@example.com");
    }
}
