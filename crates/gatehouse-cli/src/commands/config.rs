use std::path::PathBuf;
use std::process::ExitCode;

use clap::Subcommand;
use gatehouse_core::config::{ConfigSource, DEMO_CONFIG, load, show};

use super::Overrides;

#[derive(Subcommand)]
pub enum ConfigCommand {
    /// Parse and validate a configuration and list its security findings.
    Check {
        /// The file to check (default: --config, else the built-in demo configuration).
        file: Option<PathBuf>,
    },
    /// Print the built-in demo configuration (a commented reference).
    Demo,
    /// Print the effective configuration: every value (secrets masked) and where it came from (default, file,
    /// environment variable, command line).
    Show {
        /// One JSON object per line ({"key", "value", "origin"}) instead of `key = value  # origin`.
        #[arg(long)]
        json: bool,
    },
}

pub fn run(overrides: &Overrides, command: ConfigCommand) -> anyhow::Result<ExitCode> {
    match command {
        ConfigCommand::Demo => {
            print!("{DEMO_CONFIG}");
            Ok(ExitCode::SUCCESS)
        }
        ConfigCommand::Show { json } => {
            let mut shown = show(&overrides.source())?;
            // The global flags (or their environment variables) win over the file, as for every command.
            for s in &mut shown {
                let flag = match s.key.as_str() {
                    "server.data_dir" => overrides
                        .data_dir
                        .as_ref()
                        .map(|d| (d.display().to_string(), "--data-dir or GATEHOUSE_DATA_DIR")),
                    "storage.url" => {
                        overrides.database_url.clone().map(|u| (u, "--database-url or GATEHOUSE_DATABASE_URL"))
                    }
                    _ => None,
                };
                if let Some((value, origin)) = flag {
                    s.value = gatehouse_core::config::masked(&s.key, &serde_json::Value::String(value).to_string());
                    origin.clone_into(&mut s.origin);
                }
            }
            for s in shown {
                if json {
                    let value: serde_json::Value =
                        serde_json::from_str(&s.value).unwrap_or(serde_json::Value::String(s.value));
                    println!("{}", serde_json::json!({ "key": s.key, "value": value, "origin": s.origin }));
                } else {
                    println!("{} = {}  # {}", s.key, s.value, s.origin);
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        ConfigCommand::Check { file } => {
            let source = file.map_or_else(|| overrides.source(), ConfigSource::File);
            let config = match load(&source) {
                Ok(c) => c,
                Err(e) => {
                    eprintln!("{}: invalid: {e}", source.describe());
                    return Ok(ExitCode::FAILURE);
                }
            };
            // Every template is rendered once: an override that uses a variable its message lacks fails here,
            // not when the first user needs the message.
            let templates = match gatehouse_core::messages::Templates::load(config.messaging.templates_dir.as_deref()) {
                Ok(t) => t,
                Err(e) => {
                    eprintln!("{}: invalid: messaging.templates_dir: {e}", source.describe());
                    return Ok(ExitCode::FAILURE);
                }
            };
            let problems = templates.check();
            if !problems.is_empty() {
                for p in problems {
                    eprintln!("{}: invalid: messaging.templates_dir: {p}", source.describe());
                }
                return Ok(ExitCode::FAILURE);
            }
            println!("{}: valid", source.describe());
            for f in config.security_findings() {
                let level = match f.severity {
                    gatehouse_core::config::Severity::Warning => "warning",
                    gatehouse_core::config::Severity::Info => "info",
                };
                println!("{level}: {}: {}", f.path, f.message);
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}
