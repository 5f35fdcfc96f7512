//! `gatehouse`: the server and its administration commands in one binary.

mod commands;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};

#[derive(Parser)]
#[command(name = "gatehouse", version, about = "Gatehouse identity server")]
struct Cli {
    /// TOML configuration file; without one the built-in demo configuration is used.
    #[arg(long, global = true, env = "GATEHOUSE_CONFIG")]
    config: Option<PathBuf>,
    /// Data directory (SQLite database, file outbox, generated key); overrides server.data_dir.
    #[arg(long, global = true, env = "GATEHOUSE_DATA_DIR")]
    data_dir: Option<PathBuf>,
    /// Database URL, sqlite://… or postgres://…; overrides storage.url.
    #[arg(long, global = true, env = "GATEHOUSE_DATABASE_URL")]
    database_url: Option<String>,
    /// Log format.
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text, env = "GATEHOUSE_LOG_FORMAT")]
    log_format: LogFormat,
    #[command(subcommand)]
    command: Command,
}

#[derive(Clone, Copy, ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

#[derive(Subcommand)]
enum Command {
    /// Run the server.
    Serve {
        /// Listen address; overrides server.bind.
        #[arg(long, env = "GATEHOUSE_BIND")]
        bind: Option<String>,
    },
    /// Apply database migrations and exit.
    Migrate,
    /// Configuration tools.
    #[command(subcommand)]
    Config(commands::config::ConfigCommand),
    /// User administration (works while the server runs).
    #[command(subcommand)]
    User(commands::user::UserCommand),
    /// Admin API access.
    #[command(subcommand)]
    Admin(commands::admin::AdminCommand),
    /// Check what this node needs: config, database (and SQLite's build), migrations, key, mail delivery, clock.
    Doctor,
    /// Print the OpenAPI 3.1 document of the REST API (as served at /openapi.json; docs/openapi.json).
    Openapi,
    /// The audit trail as JSON lines.
    #[command(subcommand)]
    Audit(commands::audit::AuditCommand),
    /// Third-party applications of the v1 API (their API keys).
    #[command(subcommand)]
    App(commands::app::AppCommand),
    /// Registration CAPTCHA tools.
    #[command(subcommand)]
    Captcha(commands::captcha::CaptchaCommand),
    /// A command-line Gatehouse authenticator (push approvals, offline codes).
    Authenticator {
        /// Where the authenticator keeps its keys.
        #[arg(long, env = "GATEHOUSE_AUTHENTICATOR_STORE", default_value = "gatehouse-authenticator.json")]
        store: PathBuf,
        #[command(subcommand)]
        command: commands::authenticator::AuthenticatorCommand,
    },
}

fn init_logging(format: LogFormat, default_level: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("GATEHOUSE_LOG")
        // PostgreSQL's notices ("relation … already exists, skipping" from the migrator's bookkeeping) are noise.
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(format!("{default_level},sqlx::postgres::notice=warn")));
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    // Serving, and migrating (which can take minutes on a large database), say what they do.
    let verbose = matches!(cli.command, Command::Serve { .. } | Command::Migrate);
    init_logging(cli.log_format, if verbose { "info" } else { "warn" });
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let overrides = commands::Overrides { config: cli.config, data_dir: cli.data_dir, database_url: cli.database_url };
    let result = runtime.block_on(async move {
        match cli.command {
            Command::Serve { bind } => commands::serve::run(&overrides, bind).await,
            Command::Migrate => commands::migrate(&overrides).await,
            Command::Config(c) => commands::config::run(&overrides, c),
            Command::User(c) => commands::user::run(&overrides, c).await,
            Command::Admin(c) => commands::admin::run(&overrides, c).await,
            Command::Audit(c) => commands::audit::run(&overrides, c).await,
            Command::Doctor => commands::doctor::run(&overrides).await,
            Command::Captcha(c) => commands::captcha::run(c),
            Command::App(c) => commands::app::run(&overrides, c).await,
            Command::Openapi => {
                println!("{}", gatehouse_server::api::openapi_json());
                Ok(ExitCode::SUCCESS)
            }
            Command::Authenticator { store, command } => commands::authenticator::run(store, command).await,
        }
    });
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
