//! The file outbox: one RFC 5322 `.eml` file per mail, for development and demos.

use std::path::PathBuf;

use async_trait::async_trait;
use gatehouse_core::outbox::{Envelope, mask_address};
use gatehouse_core::ports::OutboxMessage;

use super::{Delivery, DeliveryError, build_mail, write_file_atomically};

pub struct FileOutbox {
    dir: PathBuf,
    from: lettre::message::Mailbox,
}

impl FileOutbox {
    pub fn new(dir: PathBuf, from: lettre::message::Mailbox) -> Self {
        Self { dir, from }
    }
}

#[async_trait]
impl Delivery for FileOutbox {
    async fn deliver(&self, message: &OutboxMessage, envelope: &Envelope) -> Result<(), DeliveryError> {
        let mail = build_mail(&self.from, envelope)?;
        let name = format!("{}-{}.eml", message.created_at, message.id);
        let path = write_file_atomically(self.dir.clone(), name, mail.formatted()).await?;
        tracing::info!(to = %mask_address(&envelope.to), template = %envelope.template, path = %path.display(), "outbox: mail written");
        Ok(())
    }

    async fn check(&self) -> Result<(), String> {
        tokio::fs::create_dir_all(&self.dir).await.map_err(|e| format!("cannot create {}: {e}", self.dir.display()))
    }

    fn describe(&self) -> String {
        format!("file outbox {}", self.dir.display())
    }
}
