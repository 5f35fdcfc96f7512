//! Delivery of queued messages: a worker claims due messages from the outbox, delivers them through the
//! configured transport and retries with exponential backoff. Delivered messages lose their content.

mod file;
pub mod hand_off;
mod letter;
mod sms;
mod smtp;
mod worker;

pub use worker::{Delivery, DeliveryError, run_worker};

use std::path::{Path, PathBuf};
use std::sync::Arc;

use gatehouse_core::config::{Config, SmsTransport, Transport};
use gatehouse_core::outbox::Envelope;
use gatehouse_core::ports::{Channel, OutboxMessage};

/// Builds the transports the configuration asks for: one for mail, one for SMS.
pub fn delivery_from_config(config: &Config) -> anyhow::Result<Arc<dyn Delivery>> {
    let from: lettre::message::Mailbox =
        config.messaging.from.parse().map_err(|e| anyhow::anyhow!("messaging.from: {e}"))?;
    let email: Box<dyn Delivery> = match config.messaging.transport {
        Transport::File => Box::new(file::FileOutbox::new(outbox_dir(config), from)),
        Transport::Smtp => Box::new(smtp::Smtp::new(&config.messaging.smtp, from, config.messaging.concurrency)?),
    };
    let sms: Box<dyn Delivery> = match config.messaging.sms.transport {
        SmsTransport::File => Box::new(sms::FileSms::new(outbox_dir(config))),
        SmsTransport::Http => Box::new(sms::HttpSms::new(&config.messaging.sms)?),
    };
    let letters_dir =
        config.messaging.letters_dir.clone().unwrap_or_else(|| Path::new(&config.server.data_dir).join("letters"));
    let letter: Box<dyn Delivery> = Box::new(letter::LetterOutbox::new(letters_dir));
    Ok(Arc::new(ByChannel { email, sms, letter }))
}

/// Hands each message to the transport of its channel.
struct ByChannel {
    email: Box<dyn Delivery>,
    sms: Box<dyn Delivery>,
    letter: Box<dyn Delivery>,
}

#[async_trait::async_trait]
impl Delivery for ByChannel {
    async fn deliver(&self, message: &OutboxMessage, envelope: &Envelope) -> Result<(), DeliveryError> {
        match message.channel {
            Channel::Email => self.email.deliver(message, envelope).await,
            Channel::Sms => self.sms.deliver(message, envelope).await,
            Channel::Letter => self.letter.deliver(message, envelope).await,
            // Nothing to send (stealth mode): done.
            Channel::Discard => Ok(()),
        }
    }

    async fn check(&self) -> Result<(), String> {
        self.email.check().await?;
        self.sms.check().await?;
        self.letter.check().await
    }

    fn close_idle(&self) {
        self.email.close_idle();
        self.sms.close_idle();
        self.letter.close_idle();
    }

    fn describe(&self) -> String {
        format!(
            "mail to {}, SMS to {}, letters to {}",
            self.email.describe(),
            self.sms.describe(),
            self.letter.describe()
        )
    }
}

/// Writes `bytes` as `dir/name` so that a reader never sees half a file. One blocking task for the file
/// operations (each `tokio::fs` call would be a thread hop of its own).
async fn write_file_atomically(dir: PathBuf, name: String, bytes: Vec<u8>) -> Result<PathBuf, DeliveryError> {
    let written = tokio::task::spawn_blocking(move || {
        std::fs::create_dir_all(&dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
        let path = dir.join(&name);
        if write_unnamed_then_link(&dir, &path, &bytes).is_err() {
            let tmp = dir.join(format!(".{name}.tmp"));
            std::fs::write(&tmp, &bytes).map_err(|e| format!("cannot write: {e}"))?;
            std::fs::rename(&tmp, &path).map_err(|e| format!("cannot rename: {e}"))?;
        }
        Ok::<_, String>(path)
    })
    .await
    .map_err(|e| DeliveryError::Transient(format!("file write task failed: {e}")))?;
    written.map_err(DeliveryError::Transient)
}

/// Writes the file without a name (`O_TMPFILE`) and then links it into `dir`: one change to the directory
/// instead of two (create, rename), and no half-written file ever has a name. Under a burst of mails the
/// directory's lock and the inode allocation of a `.tmp` file were a third of the server's CPU. Fails where
/// the file system cannot (or `/proc` is not mounted); the caller then writes and renames.
fn write_unnamed_then_link(dir: &Path, path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use rustix::fs::{AtFlags, CWD, Mode, OFlags};
    use std::io::Write as _;
    use std::os::fd::AsRawFd as _;
    let fd = rustix::fs::openat(CWD, dir, OFlags::WRONLY | OFlags::TMPFILE | OFlags::CLOEXEC, Mode::from(0o666))?;
    let mut file = std::fs::File::from(fd);
    file.write_all(bytes)?;
    let unnamed = format!("/proc/self/fd/{}", file.as_raw_fd());
    rustix::fs::linkat(CWD, unnamed.as_str(), CWD, path, AtFlags::SYMLINK_FOLLOW)?;
    Ok(())
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

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_file_is_written_whole_under_its_name_and_nothing_else_is_left() {
        let dir = std::env::temp_dir().join(format!("gatehouse-write-test-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let path = write_file_atomically(dir.join("outbox"), "1-a.eml".into(), b"first".to_vec()).await.unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"first");
        write_file_atomically(dir.join("outbox"), "2-b.eml".into(), b"second".to_vec()).await.unwrap();
        let mut names: Vec<String> = std::fs::read_dir(dir.join("outbox"))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        assert_eq!(names, ["1-a.eml", "2-b.eml"]);
        // A directory that cannot be made (a file is in the way) is an error, not a panic.
        let not_a_dir = dir.join("outbox/1-a.eml");
        assert!(write_file_atomically(not_a_dir, "x.eml".into(), b"x".to_vec()).await.is_err());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
