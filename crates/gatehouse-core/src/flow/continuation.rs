//! Email links that continue in another flow: a single-use token (256 random bits; only its keyed hash is
//! stored) mailed as `<public_url>/ui/app/self-service/flow/<target>?token=…`. Issued by the send-email-link
//! step and by an administrator (`gatehouse user send-reset-link`, the admin API) — one implementation.

use std::collections::BTreeMap;

use crate::clock::Millis;
use crate::config::Config;
use crate::crypto::ServerKey;
use crate::messages::{TemplateError, Templates};
use crate::outbox;
use crate::ports::{Effect, NewContinuationToken};
use crate::random::{Random, random_token};

/// Keyed-hash purpose of continuation tokens.
pub const TOKEN_PURPOSE: &str = "flow-continuation";

/// What sending a link needs.
pub struct LinkMail<'a> {
    pub config: &'a Config,
    pub key: &'a ServerKey,
    pub random: &'a dyn Random,
    pub templates: &'a Templates,
    pub now: Millis,
}

/// Whom a link is for: `to: None` for a user who must get nothing (stealth, no address) — the same token row
/// (the store inserts it for no one) and a job with nothing to send are queued, so both cost the same.
pub struct Recipient<'a> {
    pub user_id: &'a str,
    pub username: &'a str,
    pub to: Option<&'a str>,
}

/// The effects of mailing a link into `target_flow`: the token row and the queued mail.
pub fn link_effects(
    m: &LinkMail<'_>,
    recipient: &Recipient<'_>,
    target_flow: &str,
    template: &str,
    validity_seconds: u64,
    lang: &str,
) -> Result<Vec<Effect>, TemplateError> {
    let token = random_token(m.random);
    let validity = i64::try_from(validity_seconds.saturating_mul(1000)).unwrap_or(i64::MAX);
    let link = format!("{}/ui/app/self-service/flow/{target_flow}?token={token}", m.config.public_url());
    let vars = BTreeMap::from([
        ("username", recipient.username.to_owned()),
        ("link", link),
        ("minutes", validity_seconds.div_ceil(60).to_string()),
    ]);
    let rendered = m.templates.render_mail(template, lang, &vars)?;
    let job = match recipient.to {
        Some(to) => outbox::seal_email(m.key, m.random, m.now, to, template, rendered),
        None => outbox::seal_discard(m.key, m.random, m.now, template, &rendered.body),
    };
    Ok(vec![
        Effect::CreateContinuationToken(NewContinuationToken {
            token_hash: m.key.hash_secret(TOKEN_PURPOSE, &token),
            user_id: recipient.user_id.to_owned(),
            flow_id: target_flow.to_owned(),
            created_at: m.now,
            expires_at: m.now.saturating_add(validity),
        }),
        Effect::Enqueue(job),
    ])
}

/// The continuation flows of a configuration: public self-service flows that start with a flow-continuation
/// step.
pub fn continuation_flows(config: &Config) -> Vec<&str> {
    config
        .public_self_service
        .flows
        .iter()
        .filter(|f| matches!(f.steps.first(), Some(crate::config::Step::FlowContinuation(_))))
        .map(|f| f.id.as_str())
        .collect()
}
