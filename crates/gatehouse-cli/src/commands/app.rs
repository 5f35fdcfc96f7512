//! `gatehouse app`: the third-party applications of the v1 API. A new or rotated API key is printed once; only
//! its keyed hash is stored.

use std::process::ExitCode;

use gatehouse_core::applications::Applications;
use gatehouse_core::clock::{SystemClock, format_timestamp};
use gatehouse_core::random::SystemRandom;

use super::{Overrides, open_store};

#[derive(clap::Subcommand)]
pub enum AppCommand {
    /// Register an application and print its API key (once).
    Create {
        name: String,
        /// The web origin its pages (and the widget) run on, e.g. https://app.example.
        #[arg(long)]
        origin: String,
        /// Where the widget sends the browser after an approval (a URL on the origin).
        #[arg(long)]
        callback: Option<String>,
    },
    /// List the applications.
    List {
        #[arg(long)]
        json: bool,
    },
    /// Replace an application's API key (the old one stops working at once) and print the new one.
    Rotate { name: String },
    /// Revoke an application: its key opens nothing any more.
    Revoke { name: String },
}

/// Who acts, as the audit log names it.
const ACTOR: &str = "admin:cli";

pub async fn run(overrides: &Overrides, command: AppCommand) -> anyhow::Result<ExitCode> {
    let config = overrides.load()?;
    let store = open_store(&config).await?;
    let (key, _) = gatehouse_server::load_server_key(&config, &SystemRandom)?;
    let apps =
        Applications { store: store.as_ref(), key: &key, random: &SystemRandom, clock: &SystemClock, config: &config };
    match command {
        AppCommand::Create { name, origin, callback } => {
            let (app, api_key) = apps.create(ACTOR, &name, &origin, callback.as_deref()).await?;
            eprintln!("application {} ({}) registered for {}; its API key (shown once):", app.name, app.id, app.origin);
            println!("{api_key}");
        }
        AppCommand::List { json } => {
            let all = store.list_applications().await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&all)?);
            }
            for a in all.iter().filter(|_| !json) {
                let state =
                    a.revoked_at.map_or_else(|| "active".to_owned(), |t| format!("revoked {}", format_timestamp(t)));
                println!("{:<24} {}  {}  {}", a.name, a.id, a.origin, state);
            }
        }
        AppCommand::Rotate { name } => {
            let api_key = apps.rotate(ACTOR, &name).await?;
            eprintln!("new API key of {name} (shown once; the old one no longer works):");
            println!("{api_key}");
        }
        AppCommand::Revoke { name } => {
            apps.revoke(ACTOR, &name).await?;
            println!("revoked {name}");
        }
    }
    Ok(ExitCode::SUCCESS)
}
