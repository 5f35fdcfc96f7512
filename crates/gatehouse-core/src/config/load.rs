use std::path::{Path, PathBuf};

use figment::Figment;
use figment::providers::{Env, Format, Serialized, Toml};

use super::Config;

/// The demo configuration: what `gatehouse serve` runs with no `--config`. Shipped as a commented file too.
pub const DEMO_CONFIG: &str = include_str!("../../../../config/gatehouse.demo.toml");

/// Where the configuration comes from.
#[derive(Debug, Clone)]
pub enum ConfigSource {
    /// The embedded demo configuration.
    Demo,
    File(PathBuf),
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{0}")]
    Parse(String),
    #[error("{file}: `{path}`: {message}")]
    Invalid { file: String, path: String, message: String },
    #[error("{0}")]
    Io(String),
}

impl ConfigSource {
    pub fn describe(&self) -> String {
        match self {
            Self::Demo => "built-in demo config".into(),
            Self::File(p) => p.display().to_string(),
        }
    }
}

/// Loads defaults, then the file (or the demo config), then `GATEHOUSE_SECTION__KEY` environment variables,
/// and validates the result. Only variables with a `__` are configuration keys, so that variables such as
/// `GATEHOUSE_DATABASE_URL` (a command-line flag's environment form) are not mistaken for unknown keys.
pub fn load(source: &ConfigSource) -> Result<Config, ConfigError> {
    let base = Figment::from(Serialized::defaults(Config::default()));
    let with_file = match source {
        ConfigSource::Demo => base.merge(Toml::string(DEMO_CONFIG)),
        ConfigSource::File(path) => {
            if !Path::new(path).is_file() {
                return Err(ConfigError::Io(format!("config file {} does not exist", path.display())));
            }
            base.merge(Toml::file_exact(path))
        }
    };
    let figment = with_file.merge(Env::prefixed("GATEHOUSE_").filter(|k| k.as_str().contains("__")).split("__"));
    let config: Config = figment.extract().map_err(|e| ConfigError::Parse(describe_figment_error(&e)))?;
    config.validate().map_err(|(path, message)| ConfigError::Invalid { file: source.describe(), path, message })?;
    Ok(config)
}

fn describe_figment_error(error: &figment::Error) -> String {
    error
        .clone()
        .into_iter()
        .map(|e| {
            let path = if e.path.is_empty() { String::new() } else { format!("`{}`: ", e.path.join(".")) };
            let origin =
                e.metadata.as_ref().and_then(|m| m.source.as_ref()).map(|s| format!(" (in {s})")).unwrap_or_default();
            format!("{path}{}{origin}", e.kind)
        })
        .collect::<Vec<_>>()
        .join("; ")
}
