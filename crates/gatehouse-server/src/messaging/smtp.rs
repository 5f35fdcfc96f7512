//! SMTP delivery on lettre's connections (rustls; STARTTLS, implicit TLS, or plain towards loopback only), with a
//! pool of our own.
//!
//! lettre's own transport capped delivery to a local server at about 200–230 mails/s (docs/benchmarks.md): its
//! pool sends a NOOP before every reuse (a round trip per mail), and it writes the message and the final `.` in two
//! writes, so Nagle's algorithm holds the `.` back until the server's delayed ACK of the message, up to 40 ms per
//! mail. Here an idle connection is reused without a probe while it is younger than `messaging.smtp.keep_idle_seconds`
//! (a reused connection that turns out dead before the server took anything is replaced once, at once), and the
//! message goes out in one write with its terminator. Servers drop idle clients after a few minutes (RFC 5321 asks
//! them to wait at least 5): a connection kept well below that is almost never found dead. Once that age is
//! reached the connection is closed with QUIT, by the next delivery or by the worker's idle round
//! ([`Delivery::close_idle`]), so a connection the server closed first does not linger half-closed.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use gatehouse_core::config::{SmtpConfig, SmtpTls};
use gatehouse_core::outbox::{Envelope, mask_address};
use gatehouse_core::ports::OutboxMessage;
use lettre::transport::smtp::authentication::{Credentials, DEFAULT_MECHANISMS};
use lettre::transport::smtp::client::{AsyncSmtpConnection, Certificate, Tls, TlsParameters};
use lettre::transport::smtp::commands::{Data, Mail, Rcpt};
use lettre::transport::smtp::extension::{ClientId, Extension, MailBodyParameter, MailParameter};
use lettre::transport::smtp::response::Response;

use super::{Delivery, DeliveryError, build_mail};

pub struct Smtp {
    host: String,
    port: u16,
    tls: Tls,
    credentials: Option<Credentials>,
    hello: ClientId,
    timeout: Duration,
    /// Idle connections, the most recently used last. At most one per delivery in flight.
    idle: Mutex<Vec<(AsyncSmtpConnection, Instant)>>,
    /// How long an idle connection is kept for reuse.
    keep_idle: Duration,
    max_idle: usize,
    from: lettre::message::Mailbox,
    target: String,
}

/// Why one attempt on one connection failed.
enum Attempt {
    /// The connection gave no answer to `MAIL FROM` (closed while idle, reset): nothing of the message reached the
    /// server, so another connection may try at once without risking a second copy.
    NotStarted(DeliveryError),
    Failed(DeliveryError),
}

impl Smtp {
    /// `connections`: how many deliveries run at once, so how many idle connections are worth keeping.
    pub fn new(config: &SmtpConfig, from: lettre::message::Mailbox, connections: usize) -> anyhow::Result<Self> {
        let parameters = match config.tls {
            SmtpTls::None => None,
            SmtpTls::Starttls | SmtpTls::Tls => {
                let mut builder = TlsParameters::builder(config.host.clone());
                if let Some(ca_file) = &config.ca_file {
                    let pem = std::fs::read(ca_file)
                        .map_err(|e| anyhow::anyhow!("messaging.smtp.ca_file {}: {e}", ca_file.display()))?;
                    let ca = Certificate::from_pem(&pem)
                        .map_err(|e| anyhow::anyhow!("messaging.smtp.ca_file {}: {e}", ca_file.display()))?;
                    builder = builder.add_root_certificate(ca);
                }
                Some(builder.build_rustls()?)
            }
        };
        let tls = match (config.tls, parameters) {
            (SmtpTls::Tls, Some(p)) => Tls::Wrapper(p),
            (SmtpTls::Starttls, Some(p)) => Tls::Required(p),
            _ => Tls::None,
        };
        let credentials = match &config.username {
            None => None,
            Some(user) => {
                let password = match (&config.password, &config.password_file) {
                    (Some(p), _) => p.clone(),
                    (None, Some(file)) => std::fs::read_to_string(file)
                        .map_err(|e| anyhow::anyhow!("messaging.smtp.password_file {}: {e}", file.display()))?
                        .trim_end()
                        .to_owned(),
                    (None, None) => String::new(),
                };
                Some(Credentials::new(user.clone(), password))
            }
        };
        Ok(Self {
            host: config.host.clone(),
            port: config.port,
            tls,
            credentials,
            hello: ClientId::default(),
            timeout: Duration::from_secs(config.timeout_seconds),
            idle: Mutex::new(Vec::new()),
            keep_idle: Duration::from_secs(config.keep_idle_seconds),
            max_idle: connections.max(1),
            from,
            target: format!("smtp://{}:{} ({:?})", config.host, config.port, config.tls),
        })
    }

    /// A new connection: greeting, EHLO, STARTTLS when configured (then EHLO again), AUTH when configured.
    async fn connect(&self) -> Result<AsyncSmtpConnection, lettre::transport::smtp::Error> {
        let implicit = match &self.tls {
            Tls::Wrapper(p) => Some(p.clone()),
            _ => None,
        };
        let mut conn = AsyncSmtpConnection::connect_tokio1(
            (self.host.as_str(), self.port),
            Some(self.timeout),
            &self.hello,
            implicit,
            None,
        )
        .await?;
        if let Tls::Required(p) = &self.tls {
            conn.starttls(p.clone(), &self.hello).await?;
        }
        if let Some(credentials) = &self.credentials {
            conn.auth(DEFAULT_MECHANISMS, credentials).await?;
        }
        Ok(conn)
    }

    /// The most recently used idle connection young enough to reuse; older ones are closed on the way.
    fn take_idle(&self) -> Option<AsyncSmtpConnection> {
        let mut idle = self.idle.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let stale = self.drain_stale(&mut idle);
        let taken = idle.pop().map(|(conn, _)| conn);
        drop(idle);
        self.close_all(stale);
        taken
    }

    /// Removes from `idle` the connections idle for `keep_idle` or longer, and returns them.
    fn drain_stale(&self, idle: &mut Vec<(AsyncSmtpConnection, Instant)>) -> Vec<AsyncSmtpConnection> {
        // Entries are in order of last use, so everything before the first young one is stale.
        let stale_until = idle.iter().position(|(_, since)| since.elapsed() < self.keep_idle).unwrap_or(idle.len());
        idle.drain(..stale_until).map(|(conn, _)| conn).collect()
    }

    fn close_all(&self, connections: Vec<AsyncSmtpConnection>) {
        for conn in connections {
            tokio::spawn(quit(conn, self.timeout));
        }
    }

    fn give_back(&self, conn: AsyncSmtpConnection) {
        let mut idle = self.idle.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if idle.len() < self.max_idle && !self.keep_idle.is_zero() {
            idle.push((conn, Instant::now()));
        } else {
            drop(idle);
            tokio::spawn(quit(conn, self.timeout));
        }
    }

    /// One message on one connection: MAIL FROM, RCPT TO, DATA, then the message and its terminator in one write,
    /// each step within the timeout. The connection goes back to the pool only when the server took the message.
    async fn send_on(
        &self,
        mut conn: AsyncSmtpConnection,
        envelope: &lettre::address::Envelope,
        data: &DataBlock,
    ) -> Result<(), Attempt> {
        let mut options = vec![];
        let non_ascii = envelope.from().into_iter().chain(envelope.to()).any(|a| !AsRef::<str>::as_ref(a).is_ascii());
        if non_ascii {
            if !conn.server_info().supports_feature(Extension::SmtpUtfEight) {
                self.give_back(conn);
                return Err(Attempt::Failed(DeliveryError::Permanent(format!(
                    "{} does not take non-ASCII addresses (no SMTPUTF8)",
                    self.target
                ))));
            }
            options.push(MailParameter::SmtpUtfEight);
        }
        if !data.ascii {
            if !conn.server_info().supports_feature(Extension::EightBitMime) {
                self.give_back(conn);
                return Err(Attempt::Failed(DeliveryError::Permanent(format!(
                    "{} does not take 8-bit messages (no 8BITMIME)",
                    self.target
                ))));
            }
            options.push(MailParameter::Body(MailBodyParameter::EightBitMime));
        }
        let result = async {
            if let Err(e) = self.step(conn.command(Mail::new(envelope.from().cloned(), options))).await {
                return Err(if e.answered { Attempt::Failed(e.error) } else { Attempt::NotStarted(e.error) });
            }
            for to in envelope.to() {
                self.step(conn.command(Rcpt::new(to.clone(), vec![]))).await.map_err(|e| Attempt::Failed(e.error))?;
            }
            self.step(conn.command(Data)).await.map_err(|e| Attempt::Failed(e.error))?;
            self.step(conn.command(data)).await.map_err(|e| Attempt::Failed(e.error))
        }
        .await;
        match result {
            Ok(_) => {
                self.give_back(conn);
                Ok(())
            }
            Err(e) => {
                // Mid-transaction or broken: not worth an RSET dance, a new connection costs little.
                conn.abort().await;
                Err(e)
            }
        }
    }

    /// One SMTP command within the timeout.
    async fn step(
        &self,
        command: impl std::future::Future<Output = Result<Response, lettre::transport::smtp::Error>>,
    ) -> Result<Response, StepError> {
        match tokio::time::timeout(self.timeout, command).await {
            Ok(Ok(response)) => Ok(response),
            Ok(Err(e)) => {
                let answered = e.is_permanent() || e.is_transient();
                let error = if e.is_permanent() {
                    DeliveryError::Permanent(format!("{}: {e}", self.target))
                } else {
                    DeliveryError::Transient(format!("{}: {e}", self.target))
                };
                Err(StepError { answered, error })
            }
            Err(_) => Err(StepError {
                answered: false,
                error: DeliveryError::Transient(format!("{} did not answer within the timeout", self.target)),
            }),
        }
    }

    async fn deliver_once(&self, mail: &lettre::Message) -> Result<(), DeliveryError> {
        let envelope = mail.envelope();
        let data = DataBlock::new(&mail.formatted());
        if let Some(conn) = self.take_idle() {
            match self.send_on(conn, envelope, &data).await {
                Ok(()) => return Ok(()),
                Err(Attempt::Failed(e)) => return Err(e),
                Err(Attempt::NotStarted(_)) => {}
            }
        }
        let conn = match tokio::time::timeout(self.timeout, self.connect()).await {
            Ok(Ok(conn)) => conn,
            Ok(Err(e)) if e.is_permanent() => return Err(DeliveryError::Permanent(format!("{}: {e}", self.target))),
            Ok(Err(e)) => return Err(DeliveryError::Transient(format!("{}: {e}", self.target))),
            Err(_) => {
                return Err(DeliveryError::Transient(format!("{}: no connection within the timeout", self.target)));
            }
        };
        match self.send_on(conn, envelope, &data).await {
            Ok(()) => Ok(()),
            Err(Attempt::Failed(e) | Attempt::NotStarted(e)) => Err(e),
        }
    }
}

/// A command that failed; `answered`: the server replied with a code (so the connection was alive).
struct StepError {
    answered: bool,
    error: DeliveryError,
}

/// Closes a connection politely, without making anyone wait for it.
async fn quit(mut conn: AsyncSmtpConnection, timeout: Duration) {
    if tokio::time::timeout(timeout, conn.quit()).await.is_err() {
        conn.abort().await;
    }
}

/// A message ready for the DATA phase: lines starting with `.` get a second one (RFC 5321 4.5.2) and the block ends
/// with `CRLF . CRLF`. Sent as one "command", so in one write.
struct DataBlock {
    text: String,
    ascii: bool,
}

impl DataBlock {
    fn new(message: &[u8]) -> Self {
        // lettre formats a message built from Rust strings as UTF-8 (headers RFC 2047-encoded), so nothing is lost;
        // lettre's own `command` takes text.
        let message = String::from_utf8_lossy(message);
        let mut text = String::with_capacity(message.len() + 8);
        for (i, line) in message.split("\r\n").enumerate() {
            if i > 0 {
                text.push_str("\r\n");
            }
            if line.starts_with('.') {
                text.push('.');
            }
            text.push_str(line);
        }
        // The terminator is CRLF . CRLF, whose first CRLF may end the message's last line.
        text.push_str(if text.ends_with("\r\n") { ".\r\n" } else { "\r\n.\r\n" });
        Self { ascii: message.is_ascii(), text }
    }
}

impl std::fmt::Display for DataBlock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.text)
    }
}

#[async_trait]
impl Delivery for Smtp {
    async fn deliver(&self, _message: &OutboxMessage, envelope: &Envelope) -> Result<(), DeliveryError> {
        let mail = build_mail(&self.from, envelope)?;
        self.deliver_once(&mail).await?;
        tracing::info!(to = %mask_address(&envelope.to), template = %envelope.template, "outbox: mail sent by SMTP");
        Ok(())
    }

    async fn check(&self) -> Result<(), String> {
        let mut conn = match tokio::time::timeout(self.timeout, self.connect()).await {
            Ok(Ok(conn)) => conn,
            Ok(Err(e)) => return Err(format!("{}: {e}", self.target)),
            Err(_) => return Err(format!("{}: no connection within the timeout", self.target)),
        };
        let answered = tokio::time::timeout(self.timeout, conn.test_connected()).await.unwrap_or(false);
        quit(conn, self.timeout).await;
        if answered { Ok(()) } else { Err(format!("{} did not answer", self.target)) }
    }

    fn describe(&self) -> String {
        self.target.clone()
    }

    fn close_idle(&self) {
        let stale = self.drain_stale(&mut self.idle.lock().unwrap_or_else(std::sync::PoisonError::into_inner));
        self.close_all(stale);
    }
}

#[cfg(test)]
mod tests {
    use super::DataBlock;

    #[test]
    fn the_data_block_doubles_leading_dots_and_ends_with_a_lone_dot() {
        let block = DataBlock::new(b"Subject: x\r\n\r\n.hidden\r\nplain . dot\r\n..two\r\n.");
        assert_eq!(block.text, "Subject: x\r\n\r\n..hidden\r\nplain . dot\r\n...two\r\n..\r\n.\r\n");
        assert!(block.ascii);
        let block = DataBlock::new("Grüße\r\n".as_bytes());
        assert_eq!(block.text, "Grüße\r\n.\r\n");
        assert!(!block.ascii);
    }
}
