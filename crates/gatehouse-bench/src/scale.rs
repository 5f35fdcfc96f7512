//! The scale scenario's clients: identify, login and admin search against a server on a seeded database, one
//! call kind at a time, each for a fixed time; and identify latencies while housekeeping purges expired sessions.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use gatehouse_core::random::{Random as _, SystemRandom};
use serde_json::json;
use tokio::task::JoinSet;

use crate::flow::{IDENTIFY, INITIAL_PASSWORD, USERNAME_PREFIX, failure, post, username};
use crate::login::PASSWORD_CHECK;
use crate::report;
use crate::server::CpuSnapshot;

const SELECT: &str = "/rest/public/self-service/flows/password-reset/select";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Call {
    /// Select + identify of a password reset (the identify call is timed).
    Identify,
    /// A password login with the right password (one argon2id verification).
    Login,
    /// `GET /rest/admin/users?search=bench{i}`: the prefix of exactly one user.
    SearchOne,
    /// `GET /rest/admin/users?search=bench&limit=100&cursor=bench{i}`: a full page in a common prefix, after a
    /// random cursor.
    SearchPage,
}

impl Call {
    pub const ALL: [Self; 4] = [Self::Identify, Self::Login, Self::SearchOne, Self::SearchPage];

    pub fn label(self) -> &'static str {
        match self {
            Self::Identify => "identify (select + identify, reset flow)",
            Self::Login => "login, right password (argon2id)",
            Self::SearchOne => "admin search, prefix of one user",
            Self::SearchPage => "admin search, page of 100 in a common prefix",
        }
    }
}

/// What the clients of one call kind saw.
#[derive(Debug, Default)]
pub struct CallStats {
    pub ok: u64,
    pub failed: u64,
    pub first_failure: Option<String>,
    /// (when the call started, since the start of the run; how long it took) of every successful call.
    pub samples: Vec<(Duration, Duration)>,
    pub elapsed: Duration,
    /// The server's CPU time per successful call (the database server's not included).
    pub server_cpu: Duration,
    /// This process's CPU time per successful call: the clients'.
    pub client_cpu: Duration,
    /// The CPU time of the server's PostgreSQL backends per successful call (not PostgreSQL's background writers).
    pub database_cpu: Duration,
    /// The whole machine's busy CPU time per successful call (server, database, clients and anything else).
    pub machine_cpu: Duration,
    /// Cores the hypervisor gave to other machines while this one wanted them (steal), on average.
    pub steal_cores: f64,
    /// Measured at the same time as other targets' calls: the clients' and machine CPU are theirs too.
    pub shared: bool,
}

impl CallStats {
    pub fn per_second(&self) -> f64 {
        self.ok as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }

    /// The latencies, sorted.
    pub fn latencies(&self) -> Vec<Duration> {
        let mut l: Vec<Duration> = self.samples.iter().map(|(_, d)| *d).collect();
        l.sort_unstable();
        l
    }

    /// The rounds of one call kind on one size as one run: their calls, time and CPU added up.
    fn combined(rounds: &[Self]) -> Self {
        let mut total = Self::default();
        let mut cpu = [0.0; 4];
        let mut steal = 0.0;
        for r in rounds {
            for (sum, per_call) in cpu.iter_mut().zip(r.cpu()) {
                *sum += per_call.as_secs_f64() * r.ok as f64;
            }
            steal += r.steal_cores * r.elapsed.as_secs_f64();
            total.shared |= r.shared;
            total.merge(r);
            total.elapsed += r.elapsed;
        }
        let per_call = |sum: f64| Duration::from_secs_f64(sum / total.ok.max(1) as f64);
        [total.server_cpu, total.client_cpu, total.database_cpu, total.machine_cpu] = cpu.map(per_call);
        total.steal_cores = steal / total.elapsed.as_secs_f64().max(1e-9);
        total
    }

    /// Server, clients, database, machine: CPU time per call.
    fn cpu(&self) -> [Duration; 4] {
        [self.server_cpu, self.client_cpu, self.database_cpu, self.machine_cpu]
    }

    /// Adds `other`'s calls, failures and samples (not its time or CPU: those depend on whether the two ran at once).
    fn merge(&mut self, other: &Self) {
        self.ok += other.ok;
        self.failed += other.failed;
        if self.first_failure.is_none() {
            self.first_failure.clone_from(&other.first_failure);
        }
        self.samples.extend_from_slice(&other.samples);
    }
}

/// A random index in `[from, to)`.
fn pick(from: u64, to: u64) -> u64 {
    from + SystemRandom.next_u64() % to.saturating_sub(from).max(1)
}

/// A server to call: its base URL and process, an admin API token, and its users `bench0 … bench{users-1}`.
#[derive(Debug, Clone)]
pub struct Target {
    pub base: String,
    pub pid: u32,
    pub token: String,
    pub users: u64,
    /// Its PostgreSQL backends: a connection to the database server and the `application_name` they carry.
    pub backends: Option<(sqlx::PgPool, String)>,
}

impl Target {
    pub fn of(server: &crate::server::ServerProcess, token: &str, users: u64) -> Self {
        Self { base: server.base.clone(), pid: server.pid, token: token.to_owned(), users, backends: None }
    }
}

/// The CPU ticks so far of the target's database backends, by process id (none without `backends`).
async fn backend_ticks(target: &Target) -> anyhow::Result<HashMap<i32, u64>> {
    match &target.backends {
        Some((admin, name)) => crate::server::backend_ticks(admin, name).await,
        None => Ok(HashMap::new()),
    }
}

/// Runs every target's calls at the same time, `concurrency` clients split evenly between them: each target's
/// stats. The machine's speed is then the same for all; the server's and its database backends' CPU are still each
/// target's own, but the clients' and the machine's cannot be told apart per target (`shared`).
pub async fn run_at_once(
    targets: &[Target],
    call: Call,
    concurrency: usize,
    duration: Duration,
) -> anyhow::Result<Vec<CallStats>> {
    let each = (concurrency / targets.len().max(1)).max(1);
    let mut runs = JoinSet::new();
    for (i, target) in targets.iter().cloned().enumerate() {
        runs.spawn(async move { (i, run(&target, call, each, duration).await) });
    }
    let mut stats: Vec<Option<CallStats>> = targets.iter().map(|_| None).collect();
    while let Some(joined) = runs.join_next().await {
        let (i, result) = joined?;
        let mut s = result?;
        s.shared = true;
        stats[i] = Some(s);
    }
    stats.into_iter().map(|s| s.context("a target's run did not report")).collect()
}

/// Runs `concurrency` clients making `call`s for `duration` against `target`.
pub async fn run(target: &Target, call: Call, concurrency: usize, duration: Duration) -> anyhow::Result<CallStats> {
    let (base, token, users) = (target.base.as_str(), target.token.as_str(), target.users);
    let database_before = backend_ticks(target).await?;
    let cpu_before = CpuSnapshot::take(target.pid)?;
    let http =
        reqwest::Client::builder().timeout(Duration::from_secs(60)).pool_max_idle_per_host(concurrency).build()?;
    let start = Instant::now();
    let deadline = start + duration;
    let shared = Arc::new((http, base.to_owned(), token.to_owned()));
    let mut clients = JoinSet::new();
    for _ in 0..concurrency.max(1) {
        let shared = shared.clone();
        clients.spawn(async move {
            let (http, base, token) = &*shared;
            let mut stats = CallStats::default();
            while Instant::now() < deadline {
                let at = start.elapsed();
                match one(http, base, token, users, call).await {
                    Ok(took) => {
                        stats.ok += 1;
                        stats.samples.push((at, took));
                    }
                    Err(e) => {
                        stats.failed += 1;
                        stats.first_failure.get_or_insert(e);
                    }
                }
            }
            stats
        });
    }
    let mut total = CallStats::default();
    while let Some(joined) = clients.join_next().await {
        total.merge(&joined?);
    }
    total.elapsed = start.elapsed();
    let ticks_per_second = crate::server::clock_ticks();
    let used = CpuSnapshot::take(target.pid)?.since(&cpu_before, ticks_per_second);
    let database: u64 = backend_ticks(target)
        .await?
        .iter()
        .map(|(pid, ticks)| ticks.saturating_sub(database_before.get(pid).copied().unwrap_or(0)))
        .sum();
    let calls = total.ok.max(1) as f64;
    let per_call = |cores: f64| Duration::from_secs_f64(cores * total.elapsed.as_secs_f64() / calls);
    total.server_cpu = per_call(used.server_cores);
    total.client_cpu = per_call(used.bench_cores);
    total.machine_cpu = per_call(used.machine_cores);
    total.database_cpu = Duration::from_secs_f64(database as f64 / ticks_per_second / calls);
    total.steal_cores = used.steal_cores;
    Ok(total)
}

/// One call; its latency (identify: of the identify request alone).
async fn one(http: &reqwest::Client, base: &str, token: &str, users: u64, call: Call) -> Result<Duration, String> {
    let err = |what: &str, detail: String| failure(what, detail).detail;
    match call {
        Call::Identify => {
            let user = usize::try_from(pick(0, users)).unwrap_or(0);
            let mut cookie = None;
            let (status, body) = post(http, format!("{base}{SELECT}"), &mut cookie, None)
                .await
                .map_err(|e| err("select", e.to_string()))?;
            if status != 200 {
                return Err(err("select", format!("HTTP {status}: {body}")));
            }
            let t = Instant::now();
            let answer =
                post(http, format!("{base}{IDENTIFY}"), &mut cookie, Some(json!({ "username": username(user) }))).await;
            let took = t.elapsed();
            let (status, body) = answer.map_err(|e| err("identify", e.to_string()))?;
            if status != 200 || body["data"]["attributes"]["nextStep"] != "EMAIL_OTP_REQUIRED" {
                return Err(err("identify", format!("HTTP {status}: {body}")));
            }
            Ok(took)
        }
        Call::Login => {
            let user = usize::try_from(pick(0, users)).unwrap_or(0);
            let mut cookie = None;
            let t = Instant::now();
            let body = json!({ "username": username(user), "password": INITIAL_PASSWORD });
            let answer = post(http, format!("{base}{PASSWORD_CHECK}"), &mut cookie, Some(body)).await;
            let took = t.elapsed();
            let (status, body) = answer.map_err(|e| err("login", e.to_string()))?;
            if status != 200 || body["data"]["attributes"] != json!({}) {
                return Err(err("login", format!("HTTP {status}: {body}")));
            }
            Ok(took)
        }
        Call::SearchOne => {
            // bench{i} with i in the top nine tenths has the most digits: no other username starts with it.
            let i = pick(users / 10, users);
            let (took, found) = admin_get(http, base, token, &format!("search={USERNAME_PREFIX}{i}")).await?;
            if found != 1 {
                return Err(format!("search {USERNAME_PREFIX}{i}: {found} users instead of 1"));
            }
            Ok(took)
        }
        Call::SearchPage => {
            // After a cursor that does not start with 9 come at least the users 9, 90–99, 900–999: 111 from 1,000
            // users on.
            let mut cursor = pick(users / 10, users).to_string();
            if cursor.starts_with('9') {
                cursor.replace_range(..1, "8");
            }
            let query = format!("search={USERNAME_PREFIX}&limit=100&cursor={USERNAME_PREFIX}{cursor}");
            let (took, found) = admin_get(http, base, token, &query).await?;
            if found != 100 {
                return Err(format!("{query}: {found} users instead of 100"));
            }
            Ok(took)
        }
    }
}

/// An admin page as the clients read it: only how many users it holds.
#[derive(serde::Deserialize)]
struct Page {
    data: Vec<serde::de::IgnoredAny>,
}

/// One admin API call; its latency and the number of users on the page. The users are skipped, not built: the
/// clients share the cores with the server, and building each page of 100 as a `serde_json::Value` weighed on the
/// rate measured (docs/benchmarks.md, eleventh session).
async fn admin_get(http: &reqwest::Client, base: &str, token: &str, query: &str) -> Result<(Duration, usize), String> {
    let t = Instant::now();
    let res = http
        .get(format!("{base}/rest/admin/users?{query}"))
        .header("authorization", format!("Bearer {token}"))
        .send()
        .await
        .map_err(|e| format!("admin search: {e}"))?;
    let status = res.status().as_u16();
    let bytes = res.bytes().await.map_err(|e| format!("admin search: {e}"))?;
    let took = t.elapsed();
    if status != 200 {
        return Err(failure("admin search", format!("HTTP {status}: {}", String::from_utf8_lossy(&bytes))).detail);
    }
    let page: Page = serde_json::from_slice(&bytes).map_err(|e| format!("admin search: {e}"))?;
    Ok((took, page.data.len()))
}

/// An admin API token made with the server's own CLI on its configuration.
pub fn admin_token(bin: &std::path::Path, config: &std::path::Path) -> anyhow::Result<String> {
    let out = std::process::Command::new(bin)
        .arg("--config")
        .arg(config)
        .args([
            "admin",
            "token",
            "create",
            &format!("bench-{}", &gatehouse_core::random::random_id(&SystemRandom)[..8]),
        ])
        .output()
        .context("gatehouse admin token create")?;
    if !out.status.success() {
        bail!("gatehouse admin token create: {}", String::from_utf8_lossy(&out.stderr));
    }
    Ok(String::from_utf8(out.stdout)?.trim().to_owned())
}

/// One size's measurements on one backend.
pub struct SizeRun {
    pub users: u64,
    pub seeded: crate::seed::Seeded,
    /// Per call kind, one entry per round.
    pub calls: Vec<(Call, Vec<CallStats>)>,
}

impl SizeRun {
    fn rounds_of(&self, call: Call) -> Option<&[CallStats]> {
        self.calls.iter().find(|(c, _)| *c == call).map(|(_, r)| r.as_slice())
    }
}

/// Identify latencies with housekeeping purging, and after.
pub struct PurgeRun {
    pub expired: u64,
    pub seeded: crate::seed::Seeded,
    /// Identify on the same database before the expired sessions were added.
    pub without: CallStats,
    /// Identify from the server's start, while the first rounds purge.
    pub during: CallStats,
    /// Expired rows left at the end of `during`.
    pub left_after_during: i64,
    /// When every expired row was gone (since the server was ready), if within the wait.
    pub purged_after: Option<Duration>,
    /// Identify once the purge was over (or, if it was not over in time, still during it).
    pub after: CallStats,
    pub left_after_after: i64,
}

pub struct BackendScale {
    pub backend: &'static str,
    pub sizes: Vec<SizeRun>,
    pub purge: Option<PurgeRun>,
}

fn ms(d: Duration) -> String {
    report::ms(d)
}

/// The scale table (per backend, per call: the small and the large size side by side) and the purge table.
pub fn render(runs: &[BackendScale], header: &str) -> String {
    let mut out = String::from(header);
    out.push_str("\n## Seeding\n\n| backend | users | users/s | rows/s (users + 2 logins each) | took s |\n|---|---:|---:|---:|---:|\n");
    for run in runs {
        for size in &run.sizes {
            let s = &size.seeded;
            let _ = writeln!(
                out,
                "| {} | {} | {:.0} | {:.0} | {:.1} |",
                run.backend,
                size.users,
                s.users_per_second(),
                s.user_rows_per_second(),
                s.users_took.as_secs_f64()
            );
        }
    }
    out.push_str(
        "\n## Calls at each size\n\nAll rounds of a size together; the ratios are to the smallest size in the same round: \
         their median, and in brackets every round's.\n\n\
         CPU per call in ms: the server's; its PostgreSQL backends' (not PostgreSQL's background writers); the \
         clients'; the whole machine's (all of those and anything else), \"–\" where sizes were measured at once; steal is the cores the hypervisor gave to other machines meanwhile.\n\n\
         | backend | call | users | calls/s | p50 ms | p99 ms | failed | server CPU | database CPU | clients' CPU | \
         machine CPU | steal (cores) | rate ÷ smallest size's | server + database CPU ÷ smallest size's |\n\
         |---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n",
    );
    let mut failures = Vec::new();
    for run in runs {
        for call in Call::ALL {
            let base = run.sizes.first().and_then(|s| s.rounds_of(call)).unwrap_or_default();
            for size in &run.sizes {
                let Some(rounds) = size.rounds_of(call) else { continue };
                let stats = CallStats::combined(rounds);
                let l = stats.latencies();
                let rate = ratios(rounds, base, |s| s.per_second());
                let cpu = ratios(rounds, base, |s| (s.server_cpu + s.database_cpu).as_secs_f64());
                let _ = writeln!(
                    out,
                    "| {} | {} | {} | {:.1} | {} | {} | {} | {:.2} | {} | {} | {} | {:.2} | {} | {} |",
                    run.backend,
                    call.label(),
                    size.users,
                    stats.per_second(),
                    ms(report::percentile(&l, 0.5)),
                    ms(report::percentile(&l, 0.99)),
                    stats.failed,
                    stats.server_cpu.as_secs_f64() * 1e3,
                    database_cpu(run, &stats),
                    own_cpu(&stats, stats.client_cpu),
                    own_cpu(&stats, stats.machine_cpu),
                    stats.steal_cores,
                    rate,
                    cpu,
                );
                if let Some(f) = &stats.first_failure {
                    failures.push(format!("{} {} at {}: {f}", run.backend, call.label(), size.users));
                }
            }
        }
    }
    out.push_str(
        "\n## Every round\n\nPer round and size: calls/s, then CPU ms per call of the server, the database, the clients \
         and the whole machine, and steal (cores).\n\n| backend | call | round | users | calls/s | server | database | clients | \
         machine | steal |\n|---|---|---:|---:|---:|---:|---:|---:|---:|---:|\n",
    );
    for run in runs {
        for call in Call::ALL {
            let rounds = run.sizes.iter().filter_map(|s| Some((s.users, s.rounds_of(call)?))).collect::<Vec<_>>();
            let count = rounds.iter().map(|(_, r)| r.len()).max().unwrap_or(0);
            for round in 0..count {
                for (users, stats) in rounds.iter().filter_map(|(u, r)| Some((u, r.get(round)?))) {
                    let _ = writeln!(
                        out,
                        "| {} | {} | {} | {users} | {:.1} | {:.2} | {} | {} | {} | {:.2} |",
                        run.backend,
                        call.label(),
                        round + 1,
                        stats.per_second(),
                        stats.server_cpu.as_secs_f64() * 1e3,
                        database_cpu(run, stats),
                        own_cpu(stats, stats.client_cpu),
                        own_cpu(stats, stats.machine_cpu),
                        stats.steal_cores,
                    );
                }
            }
        }
    }
    let purges: Vec<(&str, &PurgeRun)> = runs.iter().filter_map(|r| r.purge.as_ref().map(|p| (r.backend, p))).collect();
    if !purges.is_empty() {
        out.push_str(
            "\n## Identify while housekeeping purges expired flow sessions\n\n\
             | backend | expired rows | window | identify/s | p50 ms | p99 ms | max ms | calls > 50 ms | expired rows left at its end |\n\
             |---|---:|---|---:|---:|---:|---:|---:|---:|\n",
        );
        for (backend, p) in &purges {
            let after = if p.purged_after.is_some() { "after the purge" } else { "later, still purging" };
            for (window, stats, left) in [
                ("nothing to purge", &p.without, 0),
                ("from the server's start (purging)", &p.during, p.left_after_during),
                (after, &p.after, p.left_after_after),
            ] {
                let l = stats.latencies();
                let slow = l.iter().filter(|d| **d > Duration::from_millis(50)).count();
                let _ = writeln!(
                    out,
                    "| {backend} | {} | {window} | {:.1} | {} | {} | {} | {slow} | {left} |",
                    if window == "nothing to purge" { 0 } else { p.expired },
                    stats.per_second(),
                    ms(report::percentile(&l, 0.5)),
                    ms(report::percentile(&l, 0.99)),
                    ms(l.last().copied().unwrap_or_default()),
                );
                if let Some(f) = &stats.first_failure {
                    failures.push(format!("{backend} identify {window}: {f}"));
                }
            }
        }
        out.push('\n');
        for (backend, p) in &purges {
            let _ = writeln!(
                out,
                "- {backend}: {} expired rows seeded at {:.0} rows/s; {}",
                p.expired,
                p.seeded.flows_per_second(),
                match p.purged_after {
                    Some(d) => format!(
                        "all purged {:.1} s after the server was ready ({:.0} rows/s)",
                        d.as_secs_f64(),
                        p.expired as f64 / d.as_secs_f64().max(1e-9)
                    ),
                    None => format!("{} still there when the bench stopped waiting", p.left_after_after),
                }
            );
            for (window, stats) in [("nothing to purge", &p.without), ("purging", &p.during), ("after", &p.after)] {
                let _ = writeln!(out, "- {backend}, {window}: identify max ms per second: {}", by_second(stats));
            }
        }
    }
    if !failures.is_empty() {
        let _ = write!(out, "\nFirst failures: {}\n", failures.join("; "));
    }
    out
}

/// The database backends' CPU ms per call, or "–" where the database is in the server's process (SQLite).
fn database_cpu(run: &BackendScale, stats: &CallStats) -> String {
    if run.backend == "sqlite" { "–".to_owned() } else { format!("{:.2}", stats.database_cpu.as_secs_f64() * 1e3) }
}

/// A CPU time per call in ms, or "–" where it was measured while other targets' calls ran too.
fn own_cpu(stats: &CallStats, cpu: Duration) -> String {
    if stats.shared { "–".to_owned() } else { format!("{:.2}", cpu.as_secs_f64() * 1e3) }
}

/// `measure` of each round ÷ the same of the base's same round: the median, and every round's in brackets when
/// there are several.
fn ratios(rounds: &[CallStats], base: &[CallStats], measure: impl Fn(&CallStats) -> f64) -> String {
    let mut each: Vec<f64> = rounds.iter().zip(base).map(|(r, b)| measure(r) / measure(b).max(1e-9)).collect();
    let listed = each.iter().map(|r| format!("{r:.2}")).collect::<Vec<_>>().join(", ");
    each.sort_by(f64::total_cmp);
    let median = match each.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => each[n / 2],
        n => (each[n / 2 - 1] + each[n / 2]) / 2.0,
    };
    if each.len() > 1 { format!("**{median:.2}** ({listed})") } else { format!("{median:.2}") }
}

/// The largest latency of each second of a run, as `1: 3.1, 2: 45.0, …`.
fn by_second(stats: &CallStats) -> String {
    let mut max: Vec<Duration> = Vec::new();
    for (at, took) in &stats.samples {
        let s = usize::try_from(at.as_secs()).unwrap_or(usize::MAX);
        if s < 3600 {
            if max.len() <= s {
                max.resize(s + 1, Duration::ZERO);
            }
            max[s] = max[s].max(*took);
        }
    }
    max.iter().enumerate().map(|(s, d)| format!("{s}: {}", ms(*d))).collect::<Vec<_>>().join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round(ok: u64, secs: u64, server_ms: u64, steal_cores: f64) -> CallStats {
        CallStats {
            ok,
            elapsed: Duration::from_secs(secs),
            server_cpu: Duration::from_millis(server_ms),
            machine_cpu: Duration::from_millis(server_ms * 2),
            steal_cores,
            ..CallStats::default()
        }
    }

    #[test]
    fn combined_rounds_weigh_cpu_by_calls_and_steal_by_time() {
        let mut second = round(300, 30, 2, 0.3);
        second.shared = true;
        let total = CallStats::combined(&[round(100, 10, 1, 0.1), second]);
        assert_eq!(total.ok, 400);
        assert_eq!(total.elapsed, Duration::from_secs(40));
        assert_eq!(total.server_cpu, Duration::from_micros(1750));
        assert_eq!(total.machine_cpu, Duration::from_micros(3500));
        assert!((total.steal_cores - 0.25).abs() < 1e-9, "{}", total.steal_cores);
        assert!(total.shared, "one shared round makes the whole shared");
    }

    #[test]
    fn ratios_give_the_median_of_the_rounds_and_each_round() {
        let base = [round(100, 1, 1, 0.0), round(100, 1, 1, 0.0), round(200, 1, 1, 0.0)];
        let large = [round(90, 1, 1, 0.0), round(100, 1, 1, 0.0), round(160, 1, 1, 0.0)];
        assert_eq!(ratios(&large, &base, CallStats::per_second), "**0.90** (0.90, 1.00, 0.80)");
        assert_eq!(ratios(&large[..2], &base[..2], CallStats::per_second), "**0.95** (0.90, 1.00)");
        assert_eq!(ratios(&large[..1], &base[..1], CallStats::per_second), "0.90");
    }

    #[test]
    fn shared_rounds_show_no_cpu_of_their_own() {
        let mut stats = round(10, 1, 1, 0.0);
        assert_eq!(own_cpu(&stats, stats.machine_cpu), "2.00");
        stats.shared = true;
        assert_eq!(own_cpu(&stats, stats.machine_cpu), "–");
        let sqlite = BackendScale { backend: "sqlite", sizes: Vec::new(), purge: None };
        assert_eq!(database_cpu(&sqlite, &round(10, 1, 1, 0.0)), "–");
    }
}
