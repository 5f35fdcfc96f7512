//! The Markdown report of the login scenario: hash rate, logins/s per core against the hashing limit, with and
//! without a wrong-password flood, per parameter set and backend.

use std::fmt::Write as _;
use std::time::Duration;

use gatehouse_core::crypto::HashParams;

use crate::hashrate::HashRate;
use crate::login::{FloodLoad, LoginLoad};
use crate::report::{Machine, hash_disturbances, hash_row, ms, percentile};
use crate::server::{CpuUse, ThreadUse};

/// One load phase on a running server.
pub struct LoginPhase {
    pub logins: LoginLoad,
    pub flood: Option<FloodLoad>,
    pub cpu: CpuUse,
    /// The same CPU by thread: the hashing workers' and everything else's.
    pub threads: ThreadUse,
    /// The server's VmHWM at the end of the phase (a peak since its start).
    pub peak_rss_kib: u64,
}

impl LoginPhase {
    /// argon2 verifications per second the server did: one per login, one per flood answer other than 503.
    pub fn hashes_per_second(&self) -> f64 {
        self.hashes() as f64 / self.logins.elapsed.as_secs_f64().max(1e-9)
    }

    fn hashes(&self) -> u64 {
        self.logins.ok + self.flood.as_ref().map_or(0, FloodLoad::hashed)
    }
}

/// One backend at one parameter set: a plain phase, then (optionally) the same with the flood.
pub struct LoginRun {
    pub backend: &'static str,
    pub setup: Duration,
    pub hash_before: HashRate,
    pub hash_after: HashRate,
    pub plain: LoginPhase,
    pub flooded: Option<LoginPhase>,
    pub memory: Memory,
}

/// The server's resident memory (kB from /proc/PID/status) around the load.
#[derive(Debug, Clone, Copy)]
pub struct Memory {
    /// Started, users created, before any login.
    pub idle: Rss,
    /// 30 s after the last phase ended.
    pub after: Rss,
    /// What the hashing workers keep by design: one argon2 block (m KiB) per worker.
    pub hashing_blocks_kib: u64,
}

#[derive(Debug, Clone, Copy, Default)]
pub struct Rss {
    pub total_kib: u64,
    /// Heap and other private memory.
    pub anon_kib: u64,
    /// The executable and libraries mapped from files.
    pub file_kib: u64,
}

impl LoginRun {
    /// The physical limit of logins per second per core: one login = one argon2 verification, so the hashes one
    /// core does per second (per CPU-second the measurement got, which is the per-thread rate when undisturbed).
    pub fn limit_per_core(&self) -> f64 {
        self.hash_before.per_cpu_second().max(self.hash_after.per_cpu_second())
    }

    fn drift(&self) -> f64 {
        let (a, b) = (self.hash_before.per_second(), self.hash_after.per_second());
        (a - b).abs() / ((a + b) / 2.0).max(1e-9)
    }

    fn phases(&self) -> impl Iterator<Item = (&'static str, &LoginPhase)> {
        std::iter::once(("alone", &self.plain)).chain(self.flooded.as_ref().map(|p| ("with flood", p)))
    }

    pub fn login_errors(&self) -> u64 {
        self.phases().map(|(_, p)| p.logins.error_count()).sum()
    }

    pub fn unexpected_flood_answers(&self) -> u64 {
        self.phases().filter_map(|(_, p)| p.flood.as_ref()).map(FloodLoad::unexpected).sum()
    }
}

/// Everything measured at one argon2id parameter set.
pub struct ParamSet {
    pub params: HashParams,
    pub hash_single: HashRate,
    pub hash_all: HashRate,
    pub runs: Vec<LoginRun>,
    pub failed: Vec<(&'static str, String)>,
}

impl ParamSet {
    fn label(&self) -> String {
        format!("m={} t={}", self.params.memory_kib, self.params.iterations)
    }
}

pub struct LoginReport {
    pub started_at: String,
    pub debug_build: bool,
    pub machine: Machine,
    pub users: usize,
    pub concurrency: usize,
    pub flood_clients: usize,
    pub duration: Duration,
    pub sets: Vec<ParamSet>,
}

impl LoginReport {
    /// Where the server's CPU went during each phase: the hashing workers' threads against all the others (the
    /// runtime, SQLite's connection threads, …), measured over the phase itself.
    fn render_threads(&self, out: &mut String) {
        let _ = writeln!(out, "## Where the server's CPU went\n");
        let _ = writeln!(
            out,
            "| parameters | backend | phase | hashing threads (cores) | other threads (cores) | **hashing share** \
             | other threads ms per hash | hashing threads ms per hash | raw ms per hash (limit) | thread switches per \
             hash | hashing workers preempted per hash |"
        );
        let _ = writeln!(out, "|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|");
        for set in &self.sets {
            for r in &set.runs {
                let raw_ms = 1000.0 / r.limit_per_core().max(1e-9);
                for (phase, p) in r.phases() {
                    let t = &p.threads;
                    let wall = p.logins.elapsed.as_secs_f64().max(1e-9);
                    let hashes = p.hashes().max(1) as f64;
                    let _ = writeln!(
                        out,
                        "| {} | {} | {phase} | {:.2} | {:.2} | **{:.1} %** | {:.2} | {:.2} | {raw_ms:.2} | {:.1} | {:.1} |",
                        set.label(),
                        r.backend,
                        t.hashing_seconds / wall,
                        t.other_seconds / wall,
                        100.0 * t.hashing_share(),
                        1000.0 * t.other_seconds / hashes,
                        1000.0 * t.hashing_seconds / hashes,
                        t.switches as f64 / hashes,
                        t.hashing_preempted as f64 / hashes
                    );
                }
            }
        }
        let _ = writeln!(
            out,
            "\nutime + stime of each of the server's threads (/proc/PID/task/*/stat) and their context switches \
             (/proc/PID/task/*/status) over the phase; hashing threads are the hashing workers, other threads \
             everything else. Per hash: per argon2 verification the server did (logins, and flood answers other than \
             503). % of limit ≈ hashing share × raw ms per hash ÷ hashing threads ms per hash. The share and the \
             switches are measured during the load itself, so unlike the limit (measured before and after it) they \
             do not move when the machine's speed does.\n"
        );
    }
}

fn sorted(samples: &[Duration]) -> Vec<Duration> {
    let mut v = samples.to_vec();
    v.sort_unstable();
    v
}

impl LoginReport {
    pub fn failed_runs(&self) -> usize {
        self.sets.iter().map(|s| s.failed.len()).sum()
    }

    pub fn errors(&self) -> u64 {
        self.sets.iter().flat_map(|s| &s.runs).map(|r| r.login_errors() + r.unexpected_flood_answers()).sum()
    }

    pub fn render(&self) -> String {
        let mut out = String::new();
        let m = &self.machine;
        let _ = writeln!(out, "# Gatehouse login benchmark\n");
        if self.debug_build {
            let _ = writeln!(out, "> **Debug build: these numbers mean nothing. Use `--release`.**\n");
        }
        let _ = writeln!(out, "Run started {}.\n", self.started_at);
        let _ = writeln!(
            out,
            "- Machine: {} cores ({}), {} MiB RAM, {}, kernel {}",
            m.cores, m.cpu_model, m.memory_mib, m.os, m.kernel
        );
        let sets: Vec<String> = self.sets.iter().map(ParamSet::label).collect();
        let _ = writeln!(out, "- argon2id (p = 1): {}", sets.join(", "));
        let _ = writeln!(
            out,
            "- Load: {} users, {} concurrent clients logging in with the right password, {} s per phase; flood phase: \
             {} more clients sending wrong passwords for one other user; server hashing workers = one per core, \
             queue 64, lockout: the 6th wrong password locks\n",
            self.users,
            self.concurrency,
            self.duration.as_secs(),
            self.flood_clients
        );

        let _ = writeln!(out, "## Raw argon2id hash rate\n");
        let _ = writeln!(
            out,
            "| measured | threads | hashes | seconds | hashes/s | hashes/s per thread | ms per hash | CPU got (cores) \
             | steal (cores) |"
        );
        let _ = writeln!(out, "|---|---:|---:|---:|---:|---:|---:|---:|---:|");
        for (when, h) in self.hash_rates() {
            hash_row(&mut out, &when, h);
        }
        let _ = writeln!(
            out,
            "\nA password login costs the server one argon2id verification, so one core can do at most as many \
             logins per second as it hashes: the limit per core below is hashes per CPU-second the measurement got \
             (= hashes/s per thread when it got all its cores; still one core's rate when others competed), the \
             higher of the idle measurements just before and just after the backend's load.\n"
        );

        let _ = writeln!(out, "## Logins\n");
        let _ = writeln!(
            out,
            "| parameters | backend | phase | logins ok | errors | logins/s | server CPU (cores) | logins/s per core \
             | limit per core | % of limit | p50 ms | p99 ms | max ms | all hashes/s per core | % of limit \
             | load generator (cores) | other processes (cores) | steal (cores) | server peak RSS (MiB) |"
        );
        let _ = writeln!(
            out,
            "|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
        );
        for set in &self.sets {
            for r in &set.runs {
                let limit = r.limit_per_core();
                for (phase, p) in r.phases() {
                    let rate = p.logins.per_second();
                    let cores = p.cpu.server_cores.max(1e-9);
                    let lat = sorted(&p.logins.latencies);
                    let hashes = p.hashes_per_second() / cores;
                    let _ = writeln!(
                        out,
                        "| {} | {} | {phase} | {} | {} | **{rate:.1}** | {:.2} | **{:.1}** | {limit:.1} | {:.0} % | {} \
                         | {} | {} | {hashes:.1} | {:.0} % | {:.2} | {:.2} | {:.2} | {:.0} |",
                        set.label(),
                        r.backend,
                        p.logins.ok,
                        p.logins.error_count(),
                        p.cpu.server_cores,
                        rate / cores,
                        100.0 * rate / cores / limit.max(1e-9),
                        ms(percentile(&lat, 0.50)),
                        ms(percentile(&lat, 0.99)),
                        ms(lat.last().copied().unwrap_or_default()),
                        100.0 * hashes / limit.max(1e-9),
                        p.cpu.bench_cores,
                        p.cpu.other_cores(),
                        p.cpu.steal_cores,
                        p.peak_rss_kib as f64 / 1024.0
                    );
                }
            }
        }
        let _ = writeln!(
            out,
            "\nlogins/s = successful logins ÷ wall time of the phase; per core = ÷ the server's average CPU over the \
             phase (utime+stime from /proc/PID/stat); % of limit = per core ÷ the limit per core (hashes per \
             CPU-second). \"all hashes/s per core\" adds the flood's requests that cost a (real or dummy) verification, i.e. all but \
             503. Latency: the password-check call of successful logins. Peak RSS is VmHWM at the end of the phase \
             (the peak since the server started).\n"
        );

        self.render_threads(&mut out);

        let _ = writeln!(out, "## Memory\n");
        let _ = writeln!(
            out,
            "| parameters | backend | idle RSS (MiB) | of it: heap etc. / executable | peak RSS (MiB) | hashing blocks (MiB) \
             | peak − blocks (MiB) | RSS 30 s after the load (MiB) | of it: heap etc. / executable |"
        );
        let _ = writeln!(out, "|---|---|---:|---:|---:|---:|---:|---:|---:|");
        for set in &self.sets {
            for r in &set.runs {
                let mib = |kib: u64| kib as f64 / 1024.0;
                let peak = r.phases().map(|(_, p)| p.peak_rss_kib).max().unwrap_or_default();
                let m = &r.memory;
                let _ = writeln!(
                    out,
                    "| {} | {} | {:.0} | {:.0} / {:.0} | {:.0} | {:.0} | {:.0} | **{:.0}** | {:.0} / {:.0} |",
                    set.label(),
                    r.backend,
                    mib(m.idle.total_kib),
                    mib(m.idle.anon_kib),
                    mib(m.idle.file_kib),
                    mib(peak),
                    mib(m.hashing_blocks_kib),
                    mib(peak.saturating_sub(m.hashing_blocks_kib)),
                    mib(m.after.total_kib),
                    mib(m.after.anon_kib),
                    mib(m.after.file_kib)
                );
            }
        }
        let _ = writeln!(
            out,
            "\nVmRSS, RssAnon and RssFile from /proc/PID/status; peak is VmHWM. The hashing workers (one per core) each \
             keep one argon2 block of m KiB from their first hash on, by design.\n"
        );

        let _ = writeln!(out, "## Wrong-password flood against one user\n");
        let _ = writeln!(
            out,
            "| parameters | backend | clients | requests | requests/s | 400 USERNAME_PASSWORD_WRONG | 403 USER_LOCKED \
             | 503 SERVICE_OVERLOADED | other | p50 / p99 ms of 400 | p50 / p99 ms of 403 |"
        );
        let _ = writeln!(out, "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
        for set in &self.sets {
            for r in &set.runs {
                let Some(f) = r.flooded.as_ref().and_then(|p| p.flood.as_ref()) else {
                    continue;
                };
                let lat = |key: &str| {
                    let v = sorted(f.latencies.get(key).map_or(&[][..], Vec::as_slice));
                    format!("{} / {}", ms(percentile(&v, 0.50)), ms(percentile(&v, 0.99)))
                };
                let _ = writeln!(
                    out,
                    "| {} | {} | {} | {} | {:.1} | {} | {} | {} | {} | {} | {} |",
                    set.label(),
                    r.backend,
                    f.clients,
                    f.requests,
                    f.per_second(),
                    f.count(FloodLoad::WRONG),
                    f.count(FloodLoad::LOCKED),
                    f.count(FloodLoad::OVERLOADED),
                    f.unexpected(),
                    lat(FloodLoad::WRONG),
                    lat(FloodLoad::LOCKED)
                );
            }
        }

        let _ = writeln!(out, "\n## Errors and checks\n");
        for set in &self.sets {
            for r in &set.runs {
                let _ = writeln!(
                    out,
                    "- {} {}: {} failed logins, {} unexpected flood answers; setup (server start + users) {:.1} s",
                    set.label(),
                    r.backend,
                    r.login_errors(),
                    r.unexpected_flood_answers(),
                    r.setup.as_secs_f64()
                );
                for (phase, p) in r.phases() {
                    for (key, (n, example)) in &p.logins.errors {
                        let _ = writeln!(out, "  - {phase}: {n} × {key}: `{example}`");
                    }
                    if let Some(f) = &p.flood {
                        for (key, (n, example)) in &f.answers {
                            if ![FloodLoad::WRONG, FloodLoad::LOCKED, FloodLoad::OVERLOADED].contains(&key.as_str()) {
                                let _ = writeln!(out, "  - flood: {n} × {key}: `{example}`");
                            }
                        }
                    }
                }
            }
            for (backend, why) in &set.failed {
                let _ = writeln!(
                    out,
                    "- {} {backend}: **run failed**:\n\n  ```text\n  {}\n  ```",
                    set.label(),
                    why.replace('\n', "\n  ")
                );
            }
        }
        for finding in self.findings() {
            let _ = writeln!(out, "- **Check failed:** {finding}");
        }
        for warning in self.disturbances() {
            let _ = writeln!(out, "- **Disturbed:** {warning}");
        }
        out
    }

    /// Phases where the server answered more password checks per CPU-second than one core can hash: some answers
    /// did not cost a verification (which the server's design promises for unknown and locked users).
    pub fn findings(&self) -> Vec<String> {
        let mut found = Vec::new();
        for set in &self.sets {
            let l = set.label();
            for r in &set.runs {
                for (phase, p) in r.phases() {
                    let hashes = p.hashes_per_second() / p.cpu.server_cores.max(1e-9);
                    if hashes > 1.2 * r.limit_per_core() {
                        found.push(format!(
                            "{l} {} ({phase}): the server answered {hashes:.1} password checks per CPU-second, more \
                             than 1.2 × the hash rate per core ({:.1}): not every answer cost a verification",
                            r.backend,
                            r.limit_per_core()
                        ));
                    }
                }
            }
        }
        found
    }

    fn hash_rates(&self) -> Vec<(String, &HashRate)> {
        let mut all = Vec::new();
        for set in &self.sets {
            let l = set.label();
            all.push((format!("{l}: start"), &set.hash_single));
            all.push((format!("{l}: start"), &set.hash_all));
            for r in &set.runs {
                all.push((format!("{l}: before {} load", r.backend), &r.hash_before));
                all.push((format!("{l}: after {} load", r.backend), &r.hash_after));
            }
        }
        all
    }

    /// Signs that something else competed for the CPU.
    pub fn disturbances(&self) -> Vec<String> {
        let mut found = hash_disturbances(&self.hash_rates());
        for set in &self.sets {
            for r in &set.runs {
                let l = set.label();
                if r.drift() > 0.2 {
                    found.push(format!(
                        "{l}: the hash rate changed by {:.0} % across the {} load ({:.1} → {:.1} hashes/s)",
                        100.0 * r.drift(),
                        r.backend,
                        r.hash_before.per_second(),
                        r.hash_after.per_second()
                    ));
                }
                for (phase, p) in r.phases() {
                    if r.backend == "sqlite" && p.cpu.other_cores() > 0.1 {
                        found.push(format!(
                            "{l}: other processes used {:.2} cores during the sqlite load ({phase})",
                            p.cpu.other_cores()
                        ));
                    }
                    if p.cpu.steal_cores > 0.1 {
                        found.push(format!(
                            "{l}: {:.2} cores stolen by the hypervisor during the {} load ({phase})",
                            p.cpu.steal_cores, r.backend
                        ));
                    }
                }
            }
        }
        found
    }
}
