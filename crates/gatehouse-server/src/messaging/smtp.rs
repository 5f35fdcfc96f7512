//! SMTP delivery through lettre (rustls; STARTTLS, implicit TLS, or plain towards loopback only).

use std::time::Duration;

use async_trait::async_trait;
use gatehouse_core::config::{SmtpConfig, SmtpTls};
use gatehouse_core::outbox::{Envelope, mask_address};
use gatehouse_core::ports::OutboxMessage;
use lettre::transport::smtp::PoolConfig;
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Certificate, Tls, TlsParameters};
use lettre::{AsyncSmtpTransport, AsyncTransport, Tokio1Executor};

use super::{Delivery, DeliveryError, build_mail};

pub struct Smtp {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: lettre::message::Mailbox,
    target: String,
}

impl Smtp {
    /// `connections`: the pool's size, one per delivery in flight.
    pub fn new(config: &SmtpConfig, from: lettre::message::Mailbox, connections: usize) -> anyhow::Result<Self> {
        let mut builder = match config.tls {
            SmtpTls::Starttls => AsyncSmtpTransport::<Tokio1Executor>::starttls_relay(&config.host)?,
            SmtpTls::Tls => AsyncSmtpTransport::<Tokio1Executor>::relay(&config.host)?,
            SmtpTls::None => AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(&config.host),
        };
        if let (Some(ca_file), SmtpTls::Starttls | SmtpTls::Tls) = (&config.ca_file, config.tls) {
            let pem = std::fs::read(ca_file)
                .map_err(|e| anyhow::anyhow!("messaging.smtp.ca_file {}: {e}", ca_file.display()))?;
            let ca = Certificate::from_pem(&pem)
                .map_err(|e| anyhow::anyhow!("messaging.smtp.ca_file {}: {e}", ca_file.display()))?;
            let parameters = TlsParameters::builder(config.host.clone()).add_root_certificate(ca).build_rustls()?;
            builder = builder.tls(if config.tls == SmtpTls::Tls {
                Tls::Wrapper(parameters)
            } else {
                Tls::Required(parameters)
            });
        }
        let pool = PoolConfig::new().max_size(u32::try_from(connections.max(1)).unwrap_or(u32::MAX));
        let mut builder =
            builder.port(config.port).timeout(Some(Duration::from_secs(config.timeout_seconds))).pool_config(pool);
        if let Some(user) = &config.username {
            let password = match (&config.password, &config.password_file) {
                (Some(p), _) => p.clone(),
                (None, Some(file)) => std::fs::read_to_string(file)
                    .map_err(|e| anyhow::anyhow!("messaging.smtp.password_file {}: {e}", file.display()))?
                    .trim_end()
                    .to_owned(),
                (None, None) => String::new(),
            };
            builder = builder.credentials(Credentials::new(user.clone(), password));
        }
        Ok(Self {
            transport: builder.build::<Tokio1Executor>(),
            from,
            target: format!("smtp://{}:{} ({:?})", config.host, config.port, config.tls),
        })
    }
}

#[async_trait]
impl Delivery for Smtp {
    async fn deliver(&self, _message: &OutboxMessage, envelope: &Envelope) -> Result<(), DeliveryError> {
        let mail = build_mail(&self.from, envelope)?;
        match self.transport.send(mail).await {
            Ok(_) => {
                tracing::info!(to = %mask_address(&envelope.to), template = %envelope.template, "outbox: mail sent by SMTP");
                Ok(())
            }
            Err(e) if e.is_permanent() => Err(DeliveryError::Permanent(e.to_string())),
            Err(e) => Err(DeliveryError::Transient(e.to_string())),
        }
    }

    async fn check(&self) -> Result<(), String> {
        match self.transport.test_connection().await {
            Ok(true) => Ok(()),
            Ok(false) => Err(format!("{} did not answer", self.target)),
            Err(e) => Err(format!("{}: {e}", self.target)),
        }
    }

    fn describe(&self) -> String {
        self.target.clone()
    }
}
