//! The initiation scenario's Markdown report: per backend the rate, both calls' latencies, the mail delay, the
//! CPU of everything on the machine, per node with `--nodes`, the exactness check; better-auth's row and the ratio.

use std::fmt::Write as _;
use std::time::Duration;

use crate::initiation::Initiations;
use crate::nodes::LimitCheck;
use crate::peer::PeerLoad;
use crate::report::{Machine, ms, percentile};
use crate::server::CpuUse;

/// One backend's run.
pub struct InitiationRun {
    pub backend: &'static str,
    pub seen: Initiations,
    /// All nodes together.
    pub cpu: CpuUse,
    /// Wall time the CPU was measured over (the load and the mail drain).
    pub cpu_wall: Duration,
    /// Each node's cores.
    pub node_cores: Vec<f64>,
    /// The SMTP sink's cores (`--smtp`).
    pub sink_cores: Option<f64>,
    pub limit: LimitCheck,
}

impl InitiationRun {
    pub fn per_second(&self) -> f64 {
        self.seen.ok as f64 / self.seen.elapsed.as_secs_f64().max(1e-9)
    }

    fn other_cores(&self) -> f64 {
        (self.cpu.other_cores() - self.sink_cores.unwrap_or(0.0)).max(0.0)
    }
}

/// better-auth's part of the run.
pub enum PeerOutcome {
    /// Not run (`--no-peer`, or not installed), and why.
    Skipped(String),
    Failed(String),
    Measured {
        version: String,
        load: PeerLoad,
    },
}

pub struct InitiationReport {
    pub started_at: String,
    pub server_bin: String,
    pub machine: Machine,
    pub users: usize,
    pub concurrency: usize,
    pub duration: Duration,
    pub nodes: usize,
    /// `file outbox` or the SMTP sink.
    pub transport: String,
    pub runs: Vec<InitiationRun>,
    pub failed: Vec<(&'static str, String)>,
    pub peer: PeerOutcome,
}

fn sorted(v: &[Duration]) -> Vec<Duration> {
    let mut v = v.to_vec();
    v.sort_unstable();
    v
}

fn p50_p99(v: &[Duration]) -> String {
    let v = sorted(v);
    format!("{} / {}", ms(percentile(&v, 0.5)), ms(percentile(&v, 0.99)))
}

/// CPU milliseconds per operation: `cores` over `wall` ÷ `count`.
fn cpu_ms_per(cores: f64, wall: Duration, count: u64) -> String {
    if count == 0 {
        return "–".into();
    }
    format!("{:.2}", cores * wall.as_secs_f64() * 1000.0 / count as f64)
}

impl InitiationReport {
    /// Whether every limit check was exact (and every backend ran).
    pub fn all_exact(&self) -> bool {
        self.runs.iter().all(|r| r.limit.exact())
    }

    pub fn render(&self) -> String {
        let m = &self.machine;
        let mut out = format!(
            "# Reset initiations and mail delay\n\nRun started {}{}; server `{}`.\n\n\
             - Machine: {} cores ({}), {} MiB RAM, {}, kernel {}\n\
             - {} users, {} clients, {} s per backend; {} `gatehouse serve` node{} per backend{}; select + identify \
             per initiation, public self-service padding off, rate limits off, the demo's lockout\n\
             - Mail transport: **{}**\n",
            self.started_at,
            if cfg!(debug_assertions) { " — **debug build**" } else { "" },
            self.server_bin,
            m.cores,
            m.cpu_model,
            m.memory_mib,
            m.os,
            m.kernel,
            self.users,
            self.concurrency,
            self.duration.as_secs(),
            self.nodes,
            if self.nodes == 1 { "" } else { "s" },
            if self.nodes > 1 { " on one PostgreSQL schema, client i talks to node i mod N" } else { "" },
            self.transport,
        );
        let peer = match &self.peer {
            PeerOutcome::Measured { version, load } => Some((version, load)),
            _ => None,
        };
        let peer_label = |v: &str| format!("better-auth {v} (SQLite, one Node process)");

        let _ = writeln!(
            out,
            "\n| backend | nodes | initiations/s | failed | select p50 / p99 ms | identify p50 / p99 ms \
             | mail delay p50 / p99 / max ms | mails missing | mails superseded |\n\
             |---|---:|---:|---:|---:|---:|---:|---:|---:|"
        );
        for r in &self.runs {
            let delay = sorted(&r.seen.mail_delay);
            let _ = writeln!(
                out,
                "| {} | {} | {:.0} | {} | {} | {} | {} / {} / {} | {} | {} |",
                r.backend,
                r.seen.per_node.len(),
                r.per_second(),
                r.seen.failed,
                p50_p99(&r.seen.select),
                p50_p99(&r.seen.identify),
                ms(percentile(&delay, 0.5)),
                ms(percentile(&delay, 0.99)),
                ms(delay.last().copied().unwrap_or_default()),
                r.seen.missing,
                r.seen.superseded
            );
        }
        if let Some((version, load)) = peer {
            let _ = writeln!(
                out,
                "| {} | – | {:.0} OTP requests/s | {} | – | {} (the OTP request) | – (sends nothing) | – | – |",
                peer_label(version),
                load.per_second(),
                load.failed,
                p50_p99(&load.latencies)
            );
        }

        let sink = self.runs.iter().any(|r| r.sink_cores.is_some());
        let _ = writeln!(
            out,
            "\n| backend | server CPU (cores) | server CPU ms per initiation | load generator (cores) |{} other \
             processes (cores) | steal (cores) |\n|---|---:|---:|---:|{}---:|---:|",
            if sink { " aiosmtpd (cores) |" } else { "" },
            if sink { "---:|" } else { "" }
        );
        for r in &self.runs {
            let _ = writeln!(
                out,
                "| {} | {:.2} | {} | {:.2} |{} {:.2} | {:.2} |",
                r.backend,
                r.cpu.server_cores,
                cpu_ms_per(r.cpu.server_cores, r.cpu_wall, r.seen.ok),
                r.cpu.bench_cores,
                if sink { format!(" {:.2} |", r.sink_cores.unwrap_or(0.0)) } else { String::new() },
                r.other_cores(),
                r.cpu.steal_cores
            );
        }
        if let Some((version, load)) = peer {
            let _ = writeln!(
                out,
                "| {} | {:.2} | {} per OTP request | {:.2} |{} {:.2} | {:.2} |",
                peer_label(version),
                load.cpu.server_cores,
                cpu_ms_per(load.cpu.server_cores, load.cpu_wall, load.ok),
                load.cpu.bench_cores,
                if sink { " – |" } else { "" },
                load.cpu.other_cores(),
                load.cpu.steal_cores
            );
        }

        if self.nodes > 1 {
            let _ = writeln!(
                out,
                "\n| backend | node | initiations/s | server CPU (cores) | server CPU ms per initiation |\n\
                 |---|---:|---:|---:|---:|"
            );
            for r in &self.runs {
                for (i, ok) in r.seen.per_node.iter().enumerate() {
                    let cores = r.node_cores.get(i).copied().unwrap_or(0.0);
                    let _ = writeln!(
                        out,
                        "| {} | {i} | {:.0} | {:.2} | {} |",
                        r.backend,
                        *ok as f64 / r.seen.elapsed.as_secs_f64().max(1e-9),
                        cores,
                        cpu_ms_per(cores, r.cpu_wall, *ok)
                    );
                }
            }
        }

        let _ = writeln!(out);
        match &self.peer {
            PeerOutcome::Measured { load, .. } => {
                let ratios: Vec<String> = self
                    .runs
                    .iter()
                    .map(|r| format!("{} {:.2}×", r.backend, r.per_second() / load.per_second().max(1e-9)))
                    .collect();
                let _ = writeln!(
                    out,
                    "- **Gatehouse ÷ better-auth** (initiations/s ÷ OTP requests/s): {}. One Gatehouse initiation is \
                     two calls (select + identify) plus a mail really written ({}); better-auth's is one call that \
                     sends nothing. better-auth: {} users seeded, a {} s warm-up, then the same clients, duration and \
                     HTTP client settings.",
                    if ratios.is_empty() { "no Gatehouse run".to_owned() } else { ratios.join(", ") },
                    self.transport,
                    crate::peer::USERS,
                    crate::peer::WARM_UP.as_secs()
                );
                if let Some(f) = &load.first_failure {
                    let _ = writeln!(out, "- better-auth: {} failed requests, e.g. `{f}`", load.failed);
                }
            }
            PeerOutcome::Skipped(why) => {
                let _ = writeln!(out, "- better-auth: not run ({why}).");
            }
            PeerOutcome::Failed(why) => {
                let _ = writeln!(out, "- better-auth: **run failed**: {why}");
            }
        }
        for r in self.runs.iter().filter(|r| r.seen.superseded > 0) {
            let _ = writeln!(
                out,
                "- **Too few users** on {}: {} mails superseded (every user was still waiting for a mail); rerun with \
                 `--users` above {} (the initiations of this run)",
                r.backend, r.seen.superseded, r.seen.ok
            );
        }
        for r in &self.runs {
            let _ = writeln!(
                out,
                "- {} ({} node{}): {}",
                r.backend,
                r.seen.per_node.len(),
                if r.seen.per_node.len() == 1 { "" } else { "s" },
                r.limit.describe()
            );
        }
        for (backend, why) in &self.failed {
            let _ = writeln!(out, "- {backend}: **run failed**:\n\n  ```text\n  {}\n  ```", why.replace('\n', "\n  "));
        }
        let _ = writeln!(
            out,
            "\ninitiations/s = initiations whose identify answered 200 ÷ the load's duration. Latencies: each \
             call's own (select, identify). Mail delay: identify sent → the mail file written (its modification \
             time), by the server's file outbox or by aiosmtpd into its Maildir. Superseded: mails no longer awaited \
             because every user was still waiting for one and a user was reused (raise `--users`; in a Maildir, \
             whose names carry no creation time, the reused user's next delay may then be measured from the late \
             mail). CPU: utime + stime from \
             /proc/PID/stat over the load and until the last mail arrived, ÷ wall time; server CPU ms per \
             initiation includes the mail's delivery. Other processes: the machine's busy time minus the server(s), \
             the load generator{} (PostgreSQL, anything else running). Exactness check, after the load with every \
             node up: {} wrong passwords for one user who took no part in the load, sent at once, request i to node \
             i mod N.",
            if sink { " and aiosmtpd" } else { "" },
            crate::nodes::WRONG_LOGINS
        );
        out
    }
}
