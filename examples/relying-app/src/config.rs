//! Command-line flags, each with an environment variable to fall back on.

use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;

#[derive(clap::Parser)]
#[command(
    name = "relying-app",
    version,
    about = "A web application with its own accounts and Gatehouse as its second factor"
)]
pub struct Config {
    /// The address to listen on.
    #[arg(long, env = "RELYING_APP_LISTEN", default_value = "127.0.0.1:3000")]
    pub listen: SocketAddr,

    /// The SQLite file holding the application's users and sessions (created if missing).
    #[arg(long, env = "RELYING_APP_DATABASE", default_value = "relying-app.db")]
    pub database: PathBuf,

    /// Gatehouse's base URL, as both this server and the person's browser reach it.
    #[arg(long, env = "GATEHOUSE_URL", default_value = "http://127.0.0.1:8080")]
    pub gatehouse_url: String,

    /// The application's API key, printed once by `gatehouse app create`.
    #[arg(long, env = "GATEHOUSE_API_KEY", hide_env_values = true)]
    pub api_key: ApiKey,

    /// How the login's second step asks the person: Gatehouse's widget in the page, or this server calling.
    #[arg(long, env = "RELYING_APP_TWO_STEP", value_enum, default_value_t = TwoStepMode::Widget)]
    pub two_step: TwoStepMode,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum TwoStepMode {
    /// The page embeds Gatehouse's widget, which shows a number to pick on the phone.
    Widget,
    /// This server asks Gatehouse to push a request, and waits for the decision.
    Server,
}

/// The API key opens the application's data in Gatehouse: it is only ever sent there, never printed.
#[derive(Clone)]
pub struct ApiKey(String);

impl ApiKey {
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for ApiKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ApiKey(…)")
    }
}

impl std::str::FromStr for ApiKey {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let key = s.trim();
        if key.is_empty() {
            return Err("the API key is empty".into());
        }
        Ok(Self(key.to_owned()))
    }
}
