pub mod admin;
pub mod app;
pub mod audit;
pub mod authenticator;
pub mod captcha;
pub mod config;
pub mod doctor;
pub mod serve;
pub mod user;

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use gatehouse_core::config::{Config, ConfigSource, load};
use gatehouse_core::ports::Store;
use gatehouse_store::{OpenOptions, redact_url};

/// The options every command shares, so that all of them act on the database the server uses.
pub struct Overrides {
    pub config: Option<PathBuf>,
    pub data_dir: Option<PathBuf>,
    pub database_url: Option<String>,
}

impl Overrides {
    pub fn source(&self) -> ConfigSource {
        self.config.clone().map_or(ConfigSource::Demo, ConfigSource::File)
    }

    pub fn load(&self) -> anyhow::Result<Config> {
        let mut config = load(&self.source())?;
        if let Some(dir) = &self.data_dir {
            config.server.data_dir.clone_from(dir);
        }
        if let Some(url) = &self.database_url {
            config.storage.url = Some(url.clone());
        }
        config.validate().map_err(|(path, message)| anyhow::anyhow!("`{path}`: {message}"))?;
        Ok(config)
    }
}

pub async fn open_store(config: &Config) -> anyhow::Result<Arc<dyn Store>> {
    let url = config.database_url();
    gatehouse_store::open(&OpenOptions {
        url: url.clone(),
        schema: config.storage.schema.clone(),
        max_connections: 4,
        migrate: true,
        lock_wait: std::time::Duration::from_millis(config.storage.lock_wait_ms),
    })
    .await
    .map_err(|e| anyhow::anyhow!("database {}: {e}", redact_url(&url)))
}

pub async fn migrate(overrides: &Overrides) -> anyhow::Result<ExitCode> {
    let config = overrides.load()?;
    open_store(&config).await?;
    println!("database {} is up to date", redact_url(&config.database_url()));
    Ok(ExitCode::SUCCESS)
}
