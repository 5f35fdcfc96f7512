//! The Markdown report: machine, parameters, hash rate, throughput, latencies, errors.

use std::fmt::Write as _;
use std::time::Duration;

use gatehouse_core::crypto::HashParams;

use crate::flow::LoadResult;
use crate::hashrate::HashRate;
use crate::server::CpuUse;

pub struct Machine {
    pub cores: usize,
    pub cpu_model: String,
    pub memory_mib: u64,
    pub os: String,
    pub kernel: String,
}

impl Machine {
    pub fn probe(cores: usize) -> Self {
        let read = |p: &str| std::fs::read_to_string(p).unwrap_or_default();
        let cpuinfo = read("/proc/cpuinfo");
        let cpu_model = cpuinfo
            .lines()
            .find_map(|l| {
                l.strip_prefix("model name").and_then(|r| r.split_once(':')).map(|(_, v)| v.trim().to_owned())
            })
            .unwrap_or_else(|| "unknown".into());
        let memory_mib = read("/proc/meminfo")
            .lines()
            .find_map(|l| l.strip_prefix("MemTotal:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
            .map_or(0, |kib| kib / 1024);
        let os = read("/etc/os-release")
            .lines()
            .find_map(|l| l.strip_prefix("PRETTY_NAME=").map(|v| v.trim_matches('"').to_owned()))
            .unwrap_or_else(|| "unknown".into());
        let kernel = read("/proc/sys/kernel/osrelease").trim().to_owned();
        Self { cores, cpu_model, memory_mib, os, kernel }
    }
}

/// What one backend's run produced.
pub struct BackendRun {
    pub backend: &'static str,
    pub load: LoadResult,
    pub cpu: CpuUse,
    pub peak_rss_kib: u64,
    /// Password-changed mails written by the end of the run (should equal the successful flows).
    pub notifications: u64,
    /// OTP mails no flow was waiting for (should be 0).
    pub unclaimed_codes: u64,
    pub setup: Duration,
    /// The all-cores hash rate just before and just after the load (server idle).
    pub hash_before: HashRate,
    pub hash_after: HashRate,
}

impl BackendRun {
    pub fn flows_per_second(&self) -> f64 {
        self.load.ok as f64 / self.load.elapsed.as_secs_f64().max(1e-9)
    }

    /// The better of the measurements just before and just after this load: other processes can only slow a
    /// measurement down, so the higher one is closer to what the machine can hash.
    fn best_hash_rate(&self) -> &HashRate {
        if self.hash_after.per_second() > self.hash_before.per_second() { &self.hash_after } else { &self.hash_before }
    }

    pub fn hash_per_second(&self) -> f64 {
        self.best_hash_rate().per_second()
    }

    pub fn hash_per_thread(&self) -> f64 {
        self.best_hash_rate().per_thread()
    }

    /// Flows per second the hashing alone would allow: two argon2 operations per reset.
    pub fn ceiling(&self) -> f64 {
        self.hash_per_second() / 2.0
    }

    /// How much the hash rate changed across the load, relative to its mean.
    pub fn drift(&self) -> f64 {
        let (a, b) = (self.hash_before.per_second(), self.hash_after.per_second());
        (a - b).abs() / ((a + b) / 2.0).max(1e-9)
    }
}

pub struct Report {
    pub started_at: String,
    pub debug_build: bool,
    pub machine: Machine,
    pub params: HashParams,
    pub users: usize,
    pub concurrency: usize,
    pub duration: Duration,
    pub flows: Option<u64>,
    pub hash_single: HashRate,
    pub hash_all: HashRate,
    pub runs: Vec<BackendRun>,
    /// Backends whose run failed as a whole, with the reason.
    pub failed: Vec<(&'static str, String)>,
}

pub fn ms(d: Duration) -> String {
    format!("{:.1}", d.as_secs_f64() * 1000.0)
}

/// Nearest-rank percentile of sorted samples.
pub fn percentile(sorted: &[Duration], q: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let rank = (q * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

fn latency_row(out: &mut String, backend: &str, name: &str, samples: &[Duration]) {
    let mut v = samples.to_vec();
    v.sort_unstable();
    let max = v.last().copied().unwrap_or_default();
    let _ = writeln!(
        out,
        "| {backend} | {name} | {} | {} | {} | {} |",
        v.len(),
        ms(percentile(&v, 0.50)),
        ms(percentile(&v, 0.99)),
        ms(max)
    );
}

pub fn hash_row(out: &mut String, when: &str, h: &HashRate) {
    let _ = writeln!(
        out,
        "| {when} | {} | {} | {:.1} | {:.1} | {:.1} | {:.1} | {:.2} | {:.2} |",
        h.threads,
        h.hashes,
        h.elapsed.as_secs_f64(),
        h.per_second(),
        h.per_thread(),
        1000.0 / h.per_thread().max(1e-9),
        h.cpu_cores,
        h.steal_cores
    );
}

/// Hash-rate measurements that got less than 90 % of their cores, or lost CPU to the hypervisor.
pub fn hash_disturbances(rates: &[(String, &HashRate)]) -> Vec<String> {
    let mut found = Vec::new();
    for (when, h) in rates {
        if h.cpu_cores < 0.9 * h.threads as f64 {
            found.push(format!(
                "the {}-thread hash rate ({when}) got only {:.2} cores; other processes competed",
                h.threads, h.cpu_cores
            ));
        }
        if h.steal_cores > 0.1 {
            found.push(format!("{:.2} cores stolen by the hypervisor during the hash rate ({when})", h.steal_cores));
        }
    }
    found
}

impl Report {
    /// Every hash-rate measurement of the run, labelled.
    fn hash_rates(&self) -> Vec<(String, &HashRate)> {
        let mut all = vec![("start".to_owned(), &self.hash_single), ("start".to_owned(), &self.hash_all)];
        for r in &self.runs {
            all.push((format!("before {} load", r.backend), &r.hash_before));
            all.push((format!("after {} load", r.backend), &r.hash_after));
        }
        all
    }

    pub fn render(&self) -> String {
        let mut out = String::new();
        let m = &self.machine;
        let p = &self.params;
        let _ = writeln!(out, "# Gatehouse password-reset benchmark\n");
        if self.debug_build {
            let _ = writeln!(out, "> **Debug build: these numbers mean nothing. Use `--release`.**\n");
        }
        let _ = writeln!(out, "Run started {}.\n", self.started_at);
        let _ = writeln!(
            out,
            "- Machine: {} cores ({}), {} MiB RAM, {}, kernel {}",
            m.cores, m.cpu_model, m.memory_mib, m.os, m.kernel
        );
        let _ = writeln!(out, "- argon2id: m = {} KiB, t = {}, p = {}", p.memory_kib, p.iterations, p.parallelism);
        let amount = self.flows.map_or_else(|| format!("{} s", self.duration.as_secs()), |n| format!("{n} flows"));
        let _ = writeln!(
            out,
            "- Load: {} users, {} concurrent clients, {amount}; server hashing workers = one per core, outbox poll 20 ms\n",
            self.users, self.concurrency
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
            "\nA reset costs the server 2 argon2 operations (verify against the old hash for SAME_AS_OLD, hash the new \
             password), so the hashing-bound ceiling is hash rate / 2: at the start {:.1} / 2 = **{:.1} flows/s**. \
             Each backend's ceiling below uses the higher of the rates measured just before and just after its load \
             (server idle), since the rate of a shared machine drifts and competition only lowers it. \"CPU got\" below the thread count means other \
             processes competed during a measurement, and that rate is too low.\n",
            self.hash_all.per_second(),
            self.hash_all.per_second() / 2.0
        );

        let _ = writeln!(out, "## Password-reset flows\n");
        let _ = writeln!(
            out,
            "| backend | flows ok | errors | wall s | flows/s | ceiling (flows/s) | % of ceiling | server CPU (cores) \
             | est. hashing (cores) \
             | load generator CPU (cores) | other processes (cores) | idle (cores) | steal (cores) | server peak RSS (MiB) |"
        );
        let _ = writeln!(out, "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
        for r in &self.runs {
            let wall = r.load.elapsed.as_secs_f64();
            let rate = r.flows_per_second();
            let hashing_cores = rate * 2.0 / r.hash_per_thread().max(1e-9);
            let _ = writeln!(
                out,
                "| {} | {} | {} | {wall:.1} | **{rate:.2}** | {:.1} | **{:.0} %** | {:.2} | {hashing_cores:.2} | {:.2} | {:.2} \
                 | {:.2} | {:.2} | {:.0} |",
                r.backend,
                r.load.ok,
                r.load.error_count(),
                r.ceiling(),
                100.0 * rate / r.ceiling().max(1e-9),
                r.cpu.server_cores,
                r.cpu.bench_cores,
                r.cpu.other_cores(),
                (self.machine.cores as f64 - r.cpu.machine_cores - r.cpu.steal_cores).max(0.0),
                r.cpu.steal_cores,
                r.peak_rss_kib as f64 / 1024.0
            );
        }
        let _ = writeln!(
            out,
            "\nCPU columns are average cores over the load phase: server and load generator from utime+stime in \
             /proc/PID/stat; \"other processes\" = busy cores of the whole machine (/proc/stat) minus both, i.e. \
             PostgreSQL and anything else that ran; steal = time the hypervisor gave to other guests. \
             \"est. hashing\" = flows/s × 2 ÷ per-thread hash rate (the rate the ceiling uses).\n"
        );

        let _ = writeln!(out, "## Latency (ms, successful calls only)\n");
        let _ = writeln!(out, "| backend | measurement | n | p50 | p99 | max |");
        let _ = writeln!(out, "|---|---|---:|---:|---:|---:|");
        for r in &self.runs {
            let s = &r.load.samples;
            latency_row(&mut out, r.backend, "select", &s.select);
            latency_row(&mut out, r.backend, "identify", &s.identify);
            latency_row(&mut out, r.backend, "otp check", &s.otp_check);
            latency_row(&mut out, r.backend, "password set", &s.password_set);
            latency_row(
                &mut out,
                r.backend,
                "OTP delivery delay (identify sent → mail file written)",
                &s.delivery_delay,
            );
            latency_row(&mut out, r.backend, "OTP wait (identify answered → bench read the code)", &s.otp_wait);
            latency_row(&mut out, r.backend, "whole flow", &s.flow);
        }
        let _ = writeln!(
            out,
            "\nThe OTP wait is part of the whole flow but of no call: it is what a flow waits for its mail after \
             identify answered (the server often writes the mail before the answer arrives). The delivery delay is \
             measured from sending identify to the mail file's mtime (coarse kernel clock, a few ms of granularity); \
             the bench scans the outbox every 10 ms, which adds 0–10 ms to the OTP wait.\n"
        );

        let _ = writeln!(out, "## Errors and checks\n");
        for r in &self.runs {
            let _ = writeln!(
                out,
                "- {}: {} failed flows; {} password-changed notifications written for {} successful flows; {} unclaimed OTP mails; \
                 setup (server start + {} users) {:.1} s",
                r.backend,
                r.load.error_count(),
                r.notifications,
                r.load.ok,
                r.unclaimed_codes,
                self.users,
                r.setup.as_secs_f64()
            );
            for (key, (n, example)) in &r.load.errors {
                let _ = writeln!(out, "  - {n} × {key}: `{example}`");
            }
        }
        for (backend, why) in &self.failed {
            let _ = writeln!(out, "- {backend}: **run failed**:\n\n  ```text\n  {}\n  ```", why.replace('\n', "\n  "));
        }
        for warning in self.disturbances() {
            let _ = writeln!(out, "- **Disturbed:** {warning}");
        }
        out
    }

    /// Signs that something else competed for the CPU, which makes the numbers (and the ceiling) unreliable.
    pub fn disturbances(&self) -> Vec<String> {
        let mut found = hash_disturbances(&self.hash_rates());
        for r in &self.runs {
            if r.drift() > 0.2 {
                found.push(format!(
                    "the hash rate changed by {:.0} % across the {} load ({:.1} → {:.1} hashes/s)",
                    100.0 * r.drift(),
                    r.backend,
                    r.hash_before.per_second(),
                    r.hash_after.per_second()
                ));
            }
            // With PostgreSQL the database is an "other process" on this machine; with SQLite nothing should be.
            if r.backend == "sqlite" && r.cpu.other_cores() > 0.1 {
                found.push(format!("other processes used {:.2} cores during the sqlite load", r.cpu.other_cores()));
            }
            if r.cpu.steal_cores > 0.1 {
                found.push(format!(
                    "{:.2} cores stolen by the hypervisor during the {} load",
                    r.cpu.steal_cores, r.backend
                ));
            }
        }
        found
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_percentiles() {
        let v: Vec<Duration> = (1..=100).map(Duration::from_millis).collect();
        assert_eq!(percentile(&v, 0.5), Duration::from_millis(50));
        assert_eq!(percentile(&v, 0.99), Duration::from_millis(99));
        assert_eq!(percentile(&v[..1], 0.99), Duration::from_millis(1));
        assert_eq!(percentile(&[], 0.5), Duration::ZERO);
    }
}
