//! SMS delivery: into the file outbox (`*.sms.json` with `to` and `text`), or to an HTTP gateway that takes
//! the same JSON.

use std::path::PathBuf;
use std::time::Duration;

use async_trait::async_trait;
use gatehouse_core::config::SmsConfig;
use gatehouse_core::outbox::Envelope;
use gatehouse_core::ports::OutboxMessage;

use super::{Delivery, DeliveryError, write_file_atomically};

fn mask_phone(phone: &str) -> String {
    let keep: String = phone.chars().rev().take(2).collect::<Vec<_>>().into_iter().rev().collect();
    format!("***{keep}")
}

pub struct FileSms {
    dir: PathBuf,
}

impl FileSms {
    pub fn new(dir: PathBuf) -> Self {
        Self { dir }
    }
}

#[async_trait]
impl Delivery for FileSms {
    async fn deliver(&self, message: &OutboxMessage, envelope: &Envelope) -> Result<(), DeliveryError> {
        let body = serde_json::json!({ "to": envelope.to, "text": envelope.body });
        let name = format!("{}-{}.sms.json", message.created_at, message.id);
        let path = write_file_atomically(self.dir.clone(), name, body.to_string().into_bytes()).await?;
        tracing::info!(to = %mask_phone(&envelope.to), template = %envelope.template, path = %path.display(), "outbox: SMS written");
        Ok(())
    }

    fn describe(&self) -> String {
        format!("file outbox {}", self.dir.display())
    }
}

pub struct HttpSms {
    client: reqwest::Client,
    url: String,
    token: Option<String>,
}

impl HttpSms {
    pub fn new(config: &SmsConfig) -> anyhow::Result<Self> {
        let url = config.url.clone().ok_or_else(|| anyhow::anyhow!("messaging.sms.url is required"))?;
        let token = match (&config.bearer_token, &config.bearer_token_file) {
            (Some(t), _) => Some(t.clone()),
            (None, Some(f)) => Some(
                std::fs::read_to_string(f)
                    .map_err(|e| anyhow::anyhow!("messaging.sms.bearer_token_file {}: {e}", f.display()))?
                    .trim()
                    .to_owned(),
            ),
            (None, None) => None,
        };
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(config.timeout_seconds))
            .build()
            .map_err(|e| anyhow::anyhow!("SMS gateway client: {e}"))?;
        Ok(Self { client, url, token })
    }
}

#[async_trait]
impl Delivery for HttpSms {
    async fn deliver(&self, _message: &OutboxMessage, envelope: &Envelope) -> Result<(), DeliveryError> {
        let mut request =
            self.client.post(&self.url).json(&serde_json::json!({ "to": envelope.to, "text": envelope.body }));
        if let Some(token) = &self.token {
            request = request.bearer_auth(token);
        }
        // The URL may carry a key (a path segment, a query parameter): it stays out of errors, which are logged
        // and kept in the outbox row.
        let response =
            request.send().await.map_err(|e| DeliveryError::Transient(format!("SMS gateway: {}", e.without_url())))?;
        let status = response.status();
        if status.is_success() {
            tracing::info!(to = %mask_phone(&envelope.to), template = %envelope.template, "outbox: SMS handed to the gateway");
            return Ok(());
        }
        let why = format!("SMS gateway answered {status}");
        // Client errors other than rate limiting and timeouts will not go away by retrying.
        if status.is_client_error() && status.as_u16() != 429 && status.as_u16() != 408 {
            return Err(DeliveryError::Permanent(why));
        }
        Err(DeliveryError::Transient(why))
    }

    fn describe(&self) -> String {
        format!("SMS gateway {}", origin(&self.url))
    }
}

/// Scheme, host and port of a URL — what logs may show of the gateway's address.
fn origin(url: &str) -> String {
    reqwest::Url::parse(url).map_or_else(|_| "(unparsable URL)".to_owned(), |u| u.origin().ascii_serialization())
}

#[cfg(test)]
mod tests {
    #[test]
    fn logs_show_the_gateways_origin_only() {
        assert_eq!(
            super::origin("https://user:pw@sms.example.com:8443/send/KEY123?apikey=s3cret"),
            "https://sms.example.com:8443"
        );
    }
}
