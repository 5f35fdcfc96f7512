use std::io::BufRead as _;
use std::process::ExitCode;

use clap::Subcommand;
use gatehouse_core::admin::{AddUser, InitialPassword, UserAdmin};
use gatehouse_core::clock::{SystemClock, format_timestamp};
use gatehouse_core::crypto::{HashParams, Passwords};
use gatehouse_core::random::SystemRandom;
use gatehouse_core::user::User;

use super::{Overrides, open_store};

#[derive(Subcommand)]
pub enum UserCommand {
    /// Create a user.
    Add {
        username: String,
        #[arg(long)]
        email: Option<String>,
        #[arg(long)]
        phone: Option<String>,
        /// Another login name (e.g. the email address); unique across all users. Repeatable.
        #[arg(long = "alias")]
        aliases: Vec<String>,
        /// Repeatable.
        #[arg(long = "role")]
        roles: Vec<String>,
        /// Read the password from the first line of standard input.
        #[arg(long, conflicts_with = "password_hash")]
        password_stdin: bool,
        /// Import an existing hash (argon2 or PBKDF2 PHC string, or bcrypt); upgraded at first use.
        #[arg(long)]
        password_hash: Option<String>,
    },
    /// Show one user: lock state and reason, counters, unlock count, roles, aliases, context (never a secret).
    Show {
        username: String,
        #[arg(long)]
        json: bool,
    },
    /// List users.
    List {
        #[arg(long)]
        json: bool,
    },
    /// Accounts a registration stored but never unlocked (locked since creation with a registration flow's
    /// initial lock reason): listed, or deleted with --purge.
    AbandonedRegistrations {
        /// Only accounts created at least this long ago.
        #[arg(long, default_value_t = 24)]
        older_than_hours: u32,
        #[arg(long)]
        purge: bool,
        #[arg(long)]
        json: bool,
    },
    /// Lock a user.
    Lock {
        username: String,
        /// Lock reason (default LockReason.InitiatedByAdmin).
        #[arg(long)]
        reason: Option<String>,
    },
    /// Unlock a user and reset every failed-attempt counter.
    Unlock { username: String },
    /// Set a user's password (read from standard input).
    SetPassword {
        username: String,
        #[arg(long, required = true)]
        password_stdin: bool,
    },
    /// Delete a user.
    Delete { username: String },
    /// Start an authenticator activation: prints the activation URI (for a QR code) and the typed code.
    ActivateAuthenticator { username: String },
    /// Mail the user a single-use password-reset link (queued; a running server delivers it).
    SendResetLink {
        username: String,
        /// The continuation flow the link leads to (default: the first flow starting with flow-continuation).
        #[arg(long)]
        flow: Option<String>,
        /// How long the link works.
        #[arg(long, default_value_t = 86400, value_parser = clap::value_parser!(u64).range(1..=604_800))]
        validity_seconds: u64,
    },
}

fn read_password() -> anyhow::Result<String> {
    let mut line = String::new();
    std::io::stdin().lock().read_line(&mut line)?;
    let password = line.trim_end_matches(['\r', '\n']).to_owned();
    if password.is_empty() {
        anyhow::bail!("no password on standard input");
    }
    Ok(password)
}

/// What `show --json` and `list --json` print: the user record without any secret.
fn view(user: &User) -> serde_json::Value {
    let mut v = serde_json::to_value(user).unwrap_or_default();
    if let Some(obj) = v.as_object_mut() {
        obj.insert("has_password".into(), user.has_password().into());
    }
    v
}

fn print_user(u: &User) {
    let time = |t: Option<i64>| t.map_or_else(|| "-".to_owned(), format_timestamp);
    println!("username:        {}", u.username);
    println!("id:              {}", u.id);
    println!("aliases:         {}", if u.aliases.is_empty() { "-".into() } else { u.aliases.join(", ") });
    if u.locked {
        println!(
            "locked:          yes, {} (since {})",
            u.lock_reason.as_deref().unwrap_or("no reason"),
            time(u.locked_at)
        );
    } else {
        println!("locked:          no");
    }
    let counters: Vec<String> = u.failed_attempts.iter().map(|(m, c)| format!("{m}={c}")).collect();
    println!("failed attempts: {}", if counters.is_empty() { "none".into() } else { counters.join(", ") });
    println!("unlock count:    {}", u.unlock_count);
    println!("roles:           {}", if u.roles.is_empty() { "-".into() } else { u.roles.join(", ") });
    let context: Vec<String> = u.context.iter().map(|(k, v)| format!("{k}={v}")).collect();
    println!("context:         {}", if context.is_empty() { "-".into() } else { context.join(", ") });
    println!("auth method:     {}", u.auth_method.as_deref().unwrap_or("-"));
    println!(
        "password:        {}",
        if u.has_password() { format!("set (changed {})", time(u.password_changed_at)) } else { "not set".into() }
    );
    println!("valid:           {} .. {}", time(u.valid_from), time(u.valid_until));
    println!("created:         {}", time(Some(u.created_at)));
}

pub async fn run(overrides: &Overrides, command: UserCommand) -> anyhow::Result<ExitCode> {
    let config = overrides.load()?;
    let store = open_store(&config).await?;
    let hasher = Passwords::new(HashParams::from(&config.hashing))?;
    let admin = UserAdmin {
        store: store.as_ref(),
        email_as_alias: config.users.email_as_alias,
        hasher: &hasher,
        policy: &config.password_policy,
        clock: &SystemClock,
        random: &SystemRandom,
        actor: "admin:cli".into(),
    };
    match command {
        UserCommand::Add { username, email, phone, aliases, roles, password_stdin, password_hash } => {
            let password = match (password_stdin, password_hash) {
                (true, _) => InitialPassword::Plain(read_password()?),
                (false, Some(h)) => InitialPassword::Hash(h),
                (false, None) => InitialPassword::None,
            };
            let user = admin
                .add(AddUser { username, email, phone, aliases, roles, context: Default::default(), password })
                .await?;
            println!("created user {} ({})", user.username, user.id);
        }
        UserCommand::Show { username, json } => {
            let user = admin.find(&username).await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&view(&user))?);
            } else {
                print_user(&user);
            }
        }
        UserCommand::List { json } => {
            let users = admin.list().await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&users.iter().map(view).collect::<Vec<_>>())?);
            } else {
                for u in users {
                    let lock = if u.locked {
                        format!("locked ({})", u.lock_reason.as_deref().unwrap_or("-"))
                    } else {
                        "active".into()
                    };
                    println!("{:<24} {:<40} {}", u.username, lock, u.context_item("email").unwrap_or("-"));
                }
            }
        }
        UserCommand::AbandonedRegistrations { older_than_hours, purge, json } => {
            let reasons: Vec<String> =
                config.self_registration.flows.iter().map(|f| f.initial_lock_reason.clone()).collect();
            let before = gatehouse_core::clock::Clock::now_ms(&SystemClock) - i64::from(older_than_hours) * 3_600_000;
            let users = if purge {
                admin.purge_abandoned_registrations(&reasons, before).await?
            } else {
                admin.abandoned_registrations(&reasons, before).await?
            };
            if json {
                println!("{}", serde_json::to_string_pretty(&users.iter().map(view).collect::<Vec<_>>())?);
            } else {
                let verb = if purge { "deleted" } else { "abandoned" };
                for u in &users {
                    let created = format_timestamp(u.created_at);
                    println!("{verb} {:<24} created {created} {}", u.username, u.lock_reason.as_deref().unwrap_or("-"));
                }
                eprintln!("{} account(s) {verb}", users.len());
            }
        }
        UserCommand::Lock { username, reason } => {
            let user = admin.lock(&username, reason.as_deref()).await?;
            println!("locked {} ({})", user.username, user.lock_reason.as_deref().unwrap_or("-"));
        }
        UserCommand::Unlock { username } => {
            let user = admin.unlock(&username).await?;
            println!("unlocked {} and reset its failed-attempt counters", user.username);
        }
        UserCommand::SetPassword { username, password_stdin: _ } => {
            admin.set_password(&username, read_password()?).await?;
            println!("password of {username} set");
        }
        UserCommand::Delete { username } => {
            admin.delete(&username).await?;
            println!("deleted {username}");
        }
        UserCommand::SendResetLink { username, flow, validity_seconds } => {
            let (key, _) = gatehouse_server::load_server_key(&config, &SystemRandom)?;
            let templates = gatehouse_core::messages::Templates::load(config.messaging.templates_dir.as_deref())?;
            let mail = gatehouse_core::flow::continuation::LinkMail {
                config: &config,
                key: &key,
                random: &SystemRandom,
                templates: &templates,
                now: gatehouse_core::clock::Clock::now_ms(&SystemClock),
            };
            let flow = admin.send_reset_link(&username, &mail, flow.as_deref(), validity_seconds).await?;
            println!("queued a reset link for {username} into flow `{flow}`");
        }
        UserCommand::ActivateAuthenticator { username } => {
            let user = admin.find(&username).await?;
            let (key, _) = gatehouse_server::load_server_key(&config, &SystemRandom)?;
            let audit = admin.audit_event("device.activation_started", &user, serde_json::json!({ "by": "cli" }));
            let now = gatehouse_core::clock::Clock::now_ms(&SystemClock);
            let a = gatehouse_core::authenticator_service::start_activation(
                store.as_ref(),
                &key,
                &SystemRandom,
                &config,
                &user,
                now,
                audit,
            )
            .await?;
            println!("{}", a.activation_uri);
            let c = &a.activation_code;
            println!("{}-{}-{}-{}", &c[..4], &c[4..8], &c[8..12], &c[12..]);
            eprintln!(
                "valid until {} (gatehouse authenticator enroll URI, or the code with --server)",
                format_timestamp(a.expires_at)
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}
