use std::path::PathBuf;
use std::process::ExitCode;

use clap::Subcommand;
use gatehouse_core::config::{ConfigSource, DEMO_CONFIG, load};

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
}

pub fn run(overrides: &Overrides, command: ConfigCommand) -> anyhow::Result<ExitCode> {
    match command {
        ConfigCommand::Demo => {
            print!("{DEMO_CONFIG}");
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
