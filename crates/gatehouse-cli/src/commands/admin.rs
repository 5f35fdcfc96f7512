use std::process::ExitCode;

use clap::Subcommand;
use gatehouse_core::clock::{Clock as _, SystemClock, format_timestamp};
use gatehouse_core::random::{SystemRandom, random_token};
use gatehouse_server::{ADMIN_TOKEN_PURPOSE, load_server_key};

use super::{Overrides, open_store};

#[derive(Subcommand)]
pub enum AdminCommand {
    /// Bearer tokens of the admin API.
    #[command(subcommand)]
    Token(TokenCommand),
}

#[derive(Subcommand)]
pub enum TokenCommand {
    /// Create a token and print it (once: only its keyed hash is stored).
    Create { name: String },
    /// List tokens (names and when they were created and last used, to the minute).
    List,
    /// Revoke a token.
    Delete { name: String },
}

pub async fn run(overrides: &Overrides, command: AdminCommand) -> anyhow::Result<ExitCode> {
    let config = overrides.load()?;
    let store = open_store(&config).await?;
    let AdminCommand::Token(command) = command;
    match command {
        TokenCommand::Create { name } => {
            if name.is_empty()
                || name.len() > 64
                || !name.chars().all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
            {
                anyhow::bail!("a token name is 1–64 letters, digits, - _ and .");
            }
            // The same key as the server's, so the server can recognise the token.
            let (key, _) = load_server_key(&config, &SystemRandom)?;
            let token = format!("gha_{}", random_token(&SystemRandom));
            if !store
                .create_admin_token(&name, &key.hash_secret(ADMIN_TOKEN_PURPOSE, &token), SystemClock.now_ms())
                .await?
            {
                anyhow::bail!("a token named `{name}` exists already");
            }
            println!("{token}");
            eprintln!("admin token `{name}` created; it is shown only now. Use it as: Authorization: Bearer <token>");
        }
        TokenCommand::List => {
            for (name, created, used) in store.list_admin_tokens().await? {
                let used = used.map_or_else(|| "never".to_owned(), format_timestamp);
                println!("{name:<24} created {}  last used {used}", format_timestamp(created));
            }
        }
        TokenCommand::Delete { name } => {
            if !store.delete_admin_token(&name).await? {
                anyhow::bail!("no token named `{name}`");
            }
            println!("revoked admin token `{name}`");
        }
    }
    Ok(ExitCode::SUCCESS)
}
