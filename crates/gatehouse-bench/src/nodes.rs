//! The servers of one run: one `gatehouse serve`, or with `--nodes N` several on the same PostgreSQL schema
//! (the same server key, each its own port and data directory); and the check that a limit stays exact when
//! wrong passwords for one user arrive at all nodes at once.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context as _, anyhow};
use gatehouse_core::config::ConfigSource;
use gatehouse_core::crypto::HashParams;
use tokio::sync::Barrier;
use tokio::task::JoinSet;

use crate::login::{PASSWORD_CHECK, WRONG_PASSWORD, check, error_code};
use crate::server::{self, Database, ServerProcess};
use crate::smtp_sink;

/// Wrong passwords sent at once by the exactness check.
pub const WRONG_LOGINS: usize = 30;

/// The nodes; each is killed when dropped unless [`Nodes::stop`] ran.
pub struct Nodes {
    pub servers: Vec<ServerProcess>,
    /// Each node's configuration file.
    pub configs: Vec<PathBuf>,
}

impl Nodes {
    /// Starts `n` nodes on `db`, node i in `dir/node{i}`, one after the other (the first migrates the schema, the
    /// others find it migrated); with `smtp_port` they deliver to the SMTP sink there instead of files.
    pub async fn start(
        bin: &Path,
        db: &Database,
        params: HashParams,
        extra: &str,
        n: usize,
        dir: &Path,
        smtp_port: Option<u16>,
    ) -> anyhow::Result<Self> {
        let mut nodes = Self { servers: Vec::new(), configs: Vec::new() };
        for i in 0..n.max(1) {
            let node_dir = dir.join(format!("node{i}"));
            std::fs::create_dir_all(&node_dir)?;
            let port = server::free_port()?;
            let config = server::write_config(&node_dir, port, db, params, extra)?;
            if let Some(smtp) = smtp_port {
                smtp_sink::deliver_to(&config, smtp)?;
            }
            let server = ServerProcess::start(bin, &config, &node_dir, port).await?;
            nodes.servers.push(server);
            nodes.configs.push(config);
        }
        Ok(nodes)
    }

    pub fn pids(&self) -> Vec<u32> {
        self.servers.iter().map(|s| s.pid).collect()
    }

    pub fn bases(&self) -> Vec<String> {
        self.servers.iter().map(|s| s.base.clone()).collect()
    }

    /// Each node's file outbox.
    pub fn outboxes(&self) -> Vec<PathBuf> {
        self.servers.iter().map(|s| s.outbox.clone()).collect()
    }

    /// Stops every node; the first error, if any.
    pub async fn stop(self) -> anyhow::Result<()> {
        let mut first = Ok(());
        for server in self.servers {
            let stopped = server.stop().await;
            if first.is_ok() {
                first = stopped;
            }
        }
        first
    }
}

/// Wrong passwords that lock a user, per the configuration `config` (`[lockout.per_method] PASSWORD`, else
/// `max_failed_attempts`): that many answer 400 USERNAME_PASSWORD_WRONG, every later one 403 USER_LOCKED.
pub fn password_limit(config: &Path) -> anyhow::Result<u64> {
    let config = gatehouse_core::config::load(&ConfigSource::File(config.to_path_buf()))
        .map_err(|e| anyhow!("cannot read {}: {e}", config.display()))?;
    let limit = config.lockout.per_method.get("PASSWORD").copied().unwrap_or(config.lockout.max_failed_attempts);
    Ok(u64::from(limit))
}

/// What the wrong passwords got back.
#[derive(Debug, Default)]
pub struct LimitCheck {
    pub limit: u64,
    pub sent: u64,
    pub wrong: u64,
    pub locked: u64,
    /// Any other answer (`status code` or `transport error`), counted.
    pub other: BTreeMap<String, u64>,
}

impl LimitCheck {
    /// Exactly `limit` wrong-password answers and every other one locked.
    pub fn exact(&self) -> bool {
        self.wrong == self.limit && self.locked + self.wrong == self.sent
    }

    pub fn describe(&self) -> String {
        let mut counts = format!(
            "{} × 400 USERNAME_PASSWORD_WRONG, {} × 403 USER_LOCKED of {} wrong passwords sent at once; the limit \
             allows {} wrong-password answers",
            self.wrong, self.locked, self.sent, self.limit
        );
        for (key, n) in &self.other {
            counts.push_str(&format!(", {n} × {key}"));
        }
        format!("limit exact: {} ({counts})", if self.exact() { "yes" } else { "**no**" })
    }
}

/// Sends [`WRONG_LOGINS`] wrong passwords for `user` at once, request i to `bases[i % bases.len()]`.
pub async fn check_limit(bases: &[String], user: &str, limit: u64) -> anyhow::Result<LimitCheck> {
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(60))
        .pool_max_idle_per_host(WRONG_LOGINS)
        .build()
        .context("cannot build the HTTP client")?;
    let barrier = Arc::new(Barrier::new(WRONG_LOGINS));
    let mut tasks = JoinSet::new();
    for i in 0..WRONG_LOGINS {
        let url = format!("{}{PASSWORD_CHECK}", bases.get(i % bases.len().max(1)).context("no node")?);
        let (http, barrier, user) = (http.clone(), barrier.clone(), user.to_owned());
        tasks.spawn(async move {
            barrier.wait().await;
            match check(&http, &url, &user, WRONG_PASSWORD).await {
                Ok((status, body, _)) => format!("{status} {}", error_code(&body)),
                Err(_) => "transport error".to_owned(),
            }
        });
    }
    let mut result = LimitCheck { limit, sent: WRONG_LOGINS as u64, ..LimitCheck::default() };
    while let Some(joined) = tasks.join_next().await {
        match joined?.as_str() {
            "400 USERNAME_PASSWORD_WRONG" => result.wrong += 1,
            "403 USER_LOCKED" => result.locked += 1,
            other => *result.other.entry(other.to_owned()).or_default() += 1,
        }
    }
    Ok(result)
}
