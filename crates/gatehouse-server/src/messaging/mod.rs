//! Delivery of queued messages: a worker claims due messages from the outbox, delivers them through the
//! configured transport and retries with exponential backoff. Delivered messages lose their content.

mod file;
mod smtp;
mod worker;

pub use worker::{Delivery, DeliveryError, run_worker};

use std::path::{Path, PathBuf};
use std::sync::Arc;

use gatehouse_core::config::{Config, Transport};

/// Builds the transport the configuration asks for.
pub fn delivery_from_config(config: &Config) -> anyhow::Result<Arc<dyn Delivery>> {
    let from: lettre::message::Mailbox =
        config.messaging.from.parse().map_err(|e| anyhow::anyhow!("messaging.from: {e}"))?;
    Ok(match config.messaging.transport {
        Transport::File => Arc::new(file::FileOutbox::new(outbox_dir(config), from)),
        Transport::Smtp => Arc::new(smtp::Smtp::new(&config.messaging.smtp, from)?),
    })
}

/// `messaging.outbox_dir`, or `DATA_DIR/outbox`.
pub fn outbox_dir(config: &Config) -> PathBuf {
    config.messaging.outbox_dir.clone().unwrap_or_else(|| Path::new(&config.server.data_dir).join("outbox"))
}

/// Builds the RFC 5322 message for an envelope.
fn build_mail(
    from: &lettre::message::Mailbox,
    env: &gatehouse_core::outbox::Envelope,
) -> Result<lettre::Message, DeliveryError> {
    let to: lettre::message::Mailbox =
        env.to.parse().map_err(|e| DeliveryError::Permanent(format!("bad recipient address: {e}")))?;
    lettre::Message::builder()
        .from(from.clone())
        .to(to)
        .message_id(None)
        .subject(env.subject.clone())
        .header(lettre::message::header::ContentType::TEXT_PLAIN)
        .body(env.body.clone())
        .map_err(|e| DeliveryError::Permanent(format!("cannot build message: {e}")))
}
