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
    load_layers(source).map(|(config, _)| config)
}

/// The layers of [`load`] (defaults, file, environment) and the configuration they make.
fn load_layers(source: &ConfigSource) -> Result<(Config, Figment), ConfigError> {
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
    Ok((config, figment))
}

/// One value of the effective configuration: its dotted key, the value (secrets masked) and where it came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Shown {
    pub key: String,
    pub value: String,
    pub origin: String,
}

/// Every value of the effective configuration (`gatehouse config show`), with secrets masked and the layer that
/// set it: `default`, the file (or the built-in demo config), or the environment variable.
pub fn show(source: &ConfigSource) -> Result<Vec<Shown>, ConfigError> {
    let (config, figment) = load_layers(source)?;
    let value = serde_json::to_value(&config).map_err(|e| ConfigError::Parse(e.to_string()))?;
    let mut leaves = Vec::new();
    flatten("", &value, &mut leaves);
    Ok(leaves
        .into_iter()
        .map(|(key, value)| {
            let origin = origin_of(&figment, source, &key);
            let value = super::mask::masked(&key, &value);
            Shown { key, value, origin }
        })
        .collect())
}

/// Leaves as (dotted key, JSON text); arrays of tables get `[i]` keys, other arrays stay one value.
fn flatten(prefix: &str, value: &serde_json::Value, out: &mut Vec<(String, String)>) {
    let join = |k: &str| if prefix.is_empty() { k.to_owned() } else { format!("{prefix}.{k}") };
    match value {
        serde_json::Value::Object(map) if !map.is_empty() => {
            for (k, v) in map {
                flatten(&join(k), v, out);
            }
        }
        serde_json::Value::Array(items) if items.iter().any(serde_json::Value::is_object) => {
            for (i, v) in items.iter().enumerate() {
                flatten(&format!("{prefix}[{i}]"), v, out);
            }
        }
        other => out.push((prefix.to_owned(), other.to_string())),
    }
}

/// Where the value of `key` came from: the last layer that has it (arrays of tables count as one value).
fn origin_of(figment: &Figment, source: &ConfigSource, key: &str) -> String {
    let lookup = key.split('[').next().unwrap_or(key);
    // The deepest key a layer names: a table a file sets whole names none of its leaves' defaults.
    let mut path: Vec<&str> = lookup.split('.').collect();
    while !path.is_empty() {
        let candidate = path.join(".");
        if figment.find_value(&candidate).is_ok()
            && let Some(md) = figment.find_metadata(&candidate)
        {
            if md.name.contains("environment") {
                return format!("env GATEHOUSE_{}", candidate.to_uppercase().replace('.', "__"));
            }
            if md.name.contains("TOML") {
                return match source {
                    ConfigSource::Demo => "built-in demo config".to_owned(),
                    ConfigSource::File(p) => format!("file {}", p.display()),
                };
            }
            return "default".to_owned();
        }
        path.pop();
    }
    "default".to_owned()
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
