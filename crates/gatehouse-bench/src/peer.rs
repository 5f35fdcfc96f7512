//! better-auth in the same run (`bench/peers/better-auth`, see its README): seeded, started on a free port,
//! warmed up, then loaded with its password-reset OTP request by as many clients as Gatehouse had.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use serde_json::json;
use tokio::io::{AsyncBufReadExt as _, BufReader};
use tokio::process::{Child, Command};
use tokio::task::JoinSet;

use crate::server::{self, CpuSnapshot, CpuUse};

/// The measured call.
pub const OTP_REQUEST: &str = "/api/auth/email-otp/send-verification-otp";
/// Users seeded, as in the original measurement.
pub const USERS: usize = 1000;
/// Warm-up before the measured load (Node's JIT).
pub const WARM_UP: Duration = Duration::from_secs(3);

/// A running `node server.mjs`; killed when dropped.
pub struct Peer {
    child: Child,
    pub pid: u32,
    pub base: String,
    log: PathBuf,
}

/// What the peer's clients saw.
#[derive(Debug, Default)]
pub struct PeerLoad {
    /// 200 answers.
    pub ok: u64,
    pub failed: u64,
    /// Latencies of the 200 answers, sorted.
    pub latencies: Vec<Duration>,
    pub elapsed: Duration,
    pub cpu: CpuUse,
    /// Wall time the CPU was measured over.
    pub cpu_wall: Duration,
    /// One example of a failure.
    pub first_failure: Option<String>,
}

impl PeerLoad {
    pub fn per_second(&self) -> f64 {
        self.ok as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }
}

/// `dir` when it holds an installed peer (`node_modules`), else why not.
pub fn usable(dir: &Path) -> Result<(), String> {
    if dir.join("node_modules").is_dir() {
        Ok(())
    } else {
        Err(format!("no {}; run `npm ci` there", dir.join("node_modules").display()))
    }
}

impl Peer {
    /// Seeds [`USERS`] users into a fresh database in `data`, starts the server and waits for "listening on".
    pub async fn start(peer_dir: &Path, data: &Path) -> anyhow::Result<Self> {
        let db = data.join("peer.db");
        let seed = Command::new("node")
            .arg("seed.mjs")
            .current_dir(peer_dir)
            .env("USERS", USERS.to_string())
            .env("DB", &db)
            .stdin(Stdio::null())
            .kill_on_drop(true)
            .output()
            .await
            .context("cannot run `node seed.mjs`")?;
        if !seed.status.success() {
            bail!(
                "`node seed.mjs` failed ({}): {}",
                seed.status,
                String::from_utf8_lossy(&seed.stderr).lines().rev().take(10).collect::<Vec<_>>().join(" | ")
            );
        }
        let port = server::free_port()?;
        let log = data.join("peer.log");
        let mut child = Command::new("node")
            .arg("server.mjs")
            .current_dir(peer_dir)
            .env("PORT", port.to_string())
            .env("DB", &db)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(&log)?)
            .kill_on_drop(true)
            .spawn()
            .context("cannot start `node server.mjs`")?;
        let pid = child.id().context("node exited at once")?;
        let stdout = child.stdout.take().context("no stdout of node")?;
        let mut lines = BufReader::new(stdout).lines();
        let want = format!("listening on {port}");
        let ready = tokio::time::timeout(Duration::from_secs(60), async {
            while let Some(line) = lines.next_line().await? {
                if line.trim() == want {
                    return anyhow::Ok(true);
                }
            }
            Ok(false)
        })
        .await;
        let peer = Self { child, pid, base: format!("http://127.0.0.1:{port}"), log };
        match ready {
            Ok(Ok(true)) => {}
            Ok(Ok(false)) => bail!("better-auth exited before listening; log: {}", peer.log_tail()),
            Ok(Err(e)) => bail!("cannot read better-auth's output: {e}"),
            Err(_) => bail!("better-auth did not print \"{want}\" within 60 s; log: {}", peer.log_tail()),
        }
        // Keep draining its stdout (a closed pipe would fail a later write).
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        Ok(peer)
    }

    fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        text.lines().rev().take(10).collect::<Vec<_>>().into_iter().rev().collect::<Vec<_>>().join(" | ")
    }

    /// Kills the server and waits for it.
    pub async fn stop(mut self) {
        let _ = self.child.kill().await;
    }
}

/// Warm-up, then `concurrency` clients sending OTP requests for `duration` (the peer's CPU measured).
pub async fn measure(peer: &Peer, concurrency: usize, duration: Duration) -> anyhow::Result<PeerLoad> {
    run(&peer.base, concurrency, WARM_UP).await?;
    let ticks = server::clock_ticks();
    let (before, t) = (CpuSnapshot::take(peer.pid)?, Instant::now());
    let mut load = run(&peer.base, concurrency, duration).await?;
    load.cpu = CpuSnapshot::take(peer.pid)?.since(&before, ticks);
    load.cpu_wall = t.elapsed();
    Ok(load)
}

/// The load: the same HTTP client settings as Gatehouse's initiation clients; users in rotation.
async fn run(base: &str, concurrency: usize, duration: Duration) -> anyhow::Result<PeerLoad> {
    let http =
        reqwest::Client::builder().timeout(Duration::from_secs(60)).pool_max_idle_per_host(concurrency).build()?;
    let next = Arc::new(AtomicUsize::new(0));
    let url = Arc::new(format!("{base}{OTP_REQUEST}"));
    let started = Instant::now();
    let deadline = started + duration;
    let mut clients = JoinSet::new();
    for _ in 0..concurrency.max(1) {
        let (http, next, url) = (http.clone(), next.clone(), url.clone());
        clients.spawn(async move {
            let mut seen = PeerLoad::default();
            while Instant::now() < deadline {
                let user = next.fetch_add(1, Ordering::Relaxed) % USERS;
                let body = json!({ "email": format!("user{user}@example.test"), "type": "forget-password" });
                let t = Instant::now();
                let sent = http
                    .post(url.as_str())
                    .header("content-type", "application/json")
                    .body(body.to_string())
                    .send()
                    .await;
                let outcome = match sent {
                    Ok(r) => {
                        let status = r.status().as_u16();
                        match r.text().await {
                            Ok(_) if status == 200 => Ok(()),
                            Ok(text) => Err(format!("HTTP {status}: {}", text.chars().take(200).collect::<String>())),
                            Err(e) => Err(e.to_string()),
                        }
                    }
                    Err(e) => Err(e.to_string()),
                };
                match outcome {
                    Ok(()) => {
                        seen.ok += 1;
                        seen.latencies.push(t.elapsed());
                    }
                    Err(e) => {
                        seen.failed += 1;
                        seen.first_failure.get_or_insert(e);
                    }
                }
            }
            seen
        });
    }
    let mut all = PeerLoad { elapsed: duration, ..PeerLoad::default() };
    while let Some(joined) = clients.join_next().await {
        let seen = joined?;
        all.ok += seen.ok;
        all.failed += seen.failed;
        all.latencies.extend(seen.latencies);
        if all.first_failure.is_none() {
            all.first_failure = seen.first_failure;
        }
    }
    all.latencies.sort_unstable();
    Ok(all)
}
