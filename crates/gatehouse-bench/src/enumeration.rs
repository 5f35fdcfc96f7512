//! The enumeration scenario: can the time of an answer tell who has an account? For every public call an
//! attacker can make with only a name (password-reset identify, a wrong email code, a resend) and for a wrong
//! password at login, the same number of samples is taken for a real, an unknown, a locked and an invalid
//! account, interleaved, each on an account of its own (so no counter or lock changes what is measured). Each
//! pair of kinds is compared with a two-sample Kolmogorov–Smirnov test.
//!
//! Then the cost of what makes the answers alike: identify and login throughput with rate limits off and on
//! (same database, same run), and identify throughput for real and unknown names.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::anyhow;
use gatehouse_core::clock::{Clock as _, SystemClock};
use gatehouse_core::ports::Effect;
use gatehouse_store::OpenOptions;
use serde_json::json;
use tokio::task::JoinSet;

use crate::flow::{IDENTIFY, OTP_CHECK, post, username};
use crate::login::PASSWORD_CHECK;
use crate::report::{ms, percentile};
use crate::server::Database;

/// The kinds of accounts an attacker wants to tell apart.
pub const KINDS: [&str; 4] = ["real", "unknown", "locked", "invalid"];
/// The calls measured, in the order a walk makes them.
pub const CALLS: [&str; 4] = ["identify", "wrong email code", "resend", "wrong password"];
const SELECT: &str = "/rest/public/self-service/flows/password-reset/select";
const RESEND: &str = "/rest/public/self-service/verification/email/otp/resend/";
/// p-values below this mean an attacker could tell the two kinds apart.
pub const ALPHA: f64 = 0.01;

/// Account `i` (0-based) of a kind: real, locked and invalid accounts are the bench users `0 .. 3 × per_kind`;
/// unknown names continue the numbering and are never created, so every name has the same form.
pub fn account(kind: &str, i: usize, per_kind: usize) -> String {
    let slot = match kind {
        "real" => 0,
        "locked" => 1,
        "invalid" => 2,
        _ => 3,
    };
    username(slot * per_kind + i)
}

/// Locks the "locked" accounts (by an administrator) and ends the validity of the "invalid" ones; the bench
/// users `0 .. 3 × per_kind` must exist.
pub async fn prepare_accounts(db: &Database, per_kind: usize) -> anyhow::Result<()> {
    let store = gatehouse_store::open(&OpenOptions {
        url: db.url.clone(),
        schema: db.schema.clone(),
        max_connections: 2,
        migrate: false,
        lock_wait: Duration::from_secs(10),
    })
    .await
    .map_err(|e| anyhow!("cannot open the database: {e}"))?;
    let now = SystemClock.now_ms();
    for name in ["locked", "invalid"] {
        for i in 0..per_kind {
            let login = account(name, i, per_kind);
            let user = store
                .find_user_by_login(&login)
                .await
                .map_err(|e| anyhow!("{e}"))?
                .ok_or_else(|| anyhow!("bench user {login} is missing"))?;
            let effect = if name == "locked" {
                Effect::Lock { user_id: user.id, reason: "LockReason.InitiatedByAdmin".into(), at: now, replace: true }
            } else {
                Effect::SetValidity { user_id: user.id, valid_from: None, valid_until: Some(now - 3_600_000), at: now }
            };
            store.apply(&[effect]).await.map_err(|e| anyhow!("{e}"))?;
        }
    }
    Ok(())
}

/// Latencies by (call, kind), and the answers seen by (call, kind, status + code), to show the calls did what
/// they should.
#[derive(Debug, Default)]
pub struct Samples {
    pub latencies: BTreeMap<(&'static str, &'static str), Vec<Duration>>,
    pub answers: BTreeMap<(&'static str, &'static str, String), u64>,
    pub errors: u64,
}

impl Samples {
    fn merge(&mut self, other: Self) {
        for (k, v) in other.latencies {
            self.latencies.entry(k).or_default().extend(v);
        }
        for (k, n) in other.answers {
            *self.answers.entry(k).or_default() += n;
        }
        self.errors += other.errors;
    }

    fn record(
        &mut self,
        call: &'static str,
        kind: &'static str,
        took: Duration,
        status: u16,
        body: &serde_json::Value,
    ) {
        self.latencies.entry((call, kind)).or_default().push(took);
        let code = body["errors"][0]["code"].as_str().unwrap_or("-");
        *self.answers.entry((call, kind, format!("{status} {code}"))).or_default() += 1;
        if status >= 500 {
            self.errors += 1;
        }
    }
}

/// Takes `per_kind` samples of every call for every kind with `concurrency` workers. Jobs alternate kinds
/// (with a rotating start), so drifts of the machine fall on all kinds alike.
pub async fn sample(base: &str, per_kind: usize, concurrency: usize) -> anyhow::Result<Samples> {
    let http = reqwest::Client::builder().timeout(Duration::from_secs(60)).build()?;
    let jobs: Arc<Vec<(usize, usize)>> =
        Arc::new((0..per_kind).flat_map(|i| (0..KINDS.len()).map(move |k| (i, (k + i) % KINDS.len()))).collect());
    let next = Arc::new(AtomicUsize::new(0));
    let mut workers = JoinSet::new();
    for _ in 0..concurrency.max(1) {
        let (http, jobs, next, base) = (http.clone(), jobs.clone(), next.clone(), base.to_owned());
        workers.spawn(async move {
            let mut samples = Samples::default();
            loop {
                let n = next.fetch_add(1, Ordering::Relaxed);
                let Some(&(i, kind)) = jobs.get(n) else { break };
                walk(&http, &base, KINDS[kind], &account(KINDS[kind], i, per_kind), &mut samples).await;
            }
            samples
        });
    }
    let mut all = Samples::default();
    while let Some(joined) = workers.join_next().await {
        all.merge(joined?);
    }
    Ok(all)
}

/// One attacker's walk for one name: identify, a wrong code, a resend; a wrong password at login.
async fn walk(http: &reqwest::Client, base: &str, kind: &'static str, name: &str, samples: &mut Samples) {
    let mut cookie = None;
    if post(http, format!("{base}{SELECT}"), &mut cookie, None).await.is_err() {
        samples.errors += 1;
        return;
    }
    let calls: [(&'static str, &str, Option<serde_json::Value>); 3] = [
        (CALLS[0], IDENTIFY, Some(json!({ "username": name }))),
        (CALLS[1], OTP_CHECK, Some(json!({ "otp": "00000000" }))),
        (CALLS[2], RESEND, None),
    ];
    for (call, path, body) in calls {
        let started = Instant::now();
        match post(http, format!("{base}{path}"), &mut cookie, body).await {
            Ok((status, body)) => samples.record(call, kind, started.elapsed(), status, &body),
            Err(_) => samples.errors += 1,
        }
    }
    let mut no_cookie = None;
    let body = json!({ "username": name, "password": "Wrong-Cobalt-Lantern-0" });
    let started = Instant::now();
    match post(http, format!("{base}{PASSWORD_CHECK}"), &mut no_cookie, Some(body)).await {
        Ok((status, body)) => samples.record(CALLS[3], kind, started.elapsed(), status, &body),
        Err(_) => samples.errors += 1,
    }
}

/// Calls per second of `path` over `duration` with `concurrency` workers, the names alternating between
/// `names`; each call on a fresh flow (identify: after a select; login: without a cookie). Any call that does not
/// answer 200 fails the measurement.
pub async fn throughput(
    base: &str,
    login: bool,
    names: Vec<String>,
    password: &str,
    concurrency: usize,
    duration: Duration,
) -> anyhow::Result<f64> {
    let http = reqwest::Client::builder().timeout(Duration::from_secs(60)).build()?;
    let names = Arc::new(names);
    let next = Arc::new(AtomicUsize::new(0));
    let deadline = Instant::now() + duration;
    let started = Instant::now();
    let mut workers = JoinSet::new();
    for _ in 0..concurrency.max(1) {
        let (http, names, next, base, password) =
            (http.clone(), names.clone(), next.clone(), base.to_owned(), password.to_owned());
        workers.spawn(async move {
            let (mut ok, mut failed) = (0u64, 0u64);
            while Instant::now() < deadline {
                let name = &names[next.fetch_add(1, Ordering::Relaxed) % names.len()];
                let mut cookie = None;
                let answer = if login {
                    let body = json!({ "username": name, "password": password });
                    post(&http, format!("{base}{PASSWORD_CHECK}"), &mut cookie, Some(body)).await
                } else {
                    match post(&http, format!("{base}{SELECT}"), &mut cookie, None).await {
                        Ok(_) => {
                            let body = json!({ "username": name });
                            post(&http, format!("{base}{IDENTIFY}"), &mut cookie, Some(body)).await
                        }
                        Err(e) => Err(e),
                    }
                };
                match answer {
                    Ok((200, _)) => ok += 1,
                    _ => failed += 1,
                }
            }
            (ok, failed)
        });
    }
    let (mut ok, mut failed) = (0, 0);
    while let Some(joined) = workers.join_next().await {
        let (o, f) = joined?;
        ok += o;
        failed += f;
    }
    if failed > 0 {
        anyhow::bail!("{failed} of {} throughput calls did not answer 200", ok + failed);
    }
    Ok(ok as f64 / started.elapsed().as_secs_f64().max(1e-9))
}

/// The two-sample Kolmogorov–Smirnov statistic D (the largest gap between the two empirical distribution
/// functions) and its asymptotic p-value (Kolmogorov's series with Stephens' small-sample correction).
pub fn kolmogorov_smirnov(a: &[f64], b: &[f64]) -> (f64, f64) {
    if a.is_empty() || b.is_empty() {
        return (0.0, 1.0);
    }
    let (mut a, mut b) = (a.to_vec(), b.to_vec());
    a.sort_by(f64::total_cmp);
    b.sort_by(f64::total_cmp);
    let (n, m) = (a.len() as f64, b.len() as f64);
    let (mut i, mut j, mut d) = (0, 0, 0.0f64);
    while i < a.len() && j < b.len() {
        let x = a[i].min(b[j]);
        while i < a.len() && a[i] <= x {
            i += 1;
        }
        while j < b.len() && b[j] <= x {
            j += 1;
        }
        d = d.max((i as f64 / n - j as f64 / m).abs());
    }
    let en = (n * m / (n + m)).sqrt();
    let lambda = (en + 0.12 + 0.11 / en) * d;
    (d, kolmogorov_q(lambda))
}

/// Q_KS(λ) = 2 Σ_{j≥1} (−1)^{j−1} e^{−2j²λ²}: the probability of a gap at least this large by chance.
fn kolmogorov_q(lambda: f64) -> f64 {
    if lambda < 0.2 {
        return 1.0;
    }
    let mut sum = 0.0;
    for j in 1..=100 {
        let j = f64::from(j);
        let term = (-2.0 * j * j * lambda * lambda).exp();
        sum += if j as u32 % 2 == 1 { term } else { -term };
        if term < 1e-12 {
            break;
        }
    }
    (2.0 * sum).clamp(0.0, 1.0)
}

/// One backend's measurements.
pub struct EnumerationRun {
    pub backend: &'static str,
    /// Padding off: the work alone.
    pub raw: Samples,
    /// Padding on (public self-service `response_time_ms`, login with enumeration protection).
    pub padded: Samples,
    /// (what, rate limits off, rate limits on), calls per second.
    pub throughput: Vec<(String, f64, f64)>,
    /// Identify throughput for real names and for unknown names (rate limits off).
    pub identify_by_kind: (f64, f64),
    pub failed_calls: u64,
}

impl Samples {
    /// Pairs of kinds an attacker could tell apart by time: (call, kind a, kind b, D, p).
    pub fn distinguishable(&self) -> Vec<(&'static str, &'static str, &'static str, f64, f64)> {
        self.pairs().into_iter().filter(|p| p.4 < ALPHA).collect()
    }

    fn pairs(&self) -> Vec<(&'static str, &'static str, &'static str, f64, f64)> {
        let mut out = Vec::new();
        for call in CALLS {
            for (x, a) in KINDS.iter().enumerate() {
                for b in &KINDS[x + 1..] {
                    let get = |k: &'static str| -> Vec<f64> {
                        self.latencies
                            .get(&(call, k))
                            .map(|v| v.iter().map(Duration::as_secs_f64).collect())
                            .unwrap_or_default()
                    };
                    let (d, p) = kolmogorov_smirnov(&get(a), &get(b));
                    out.push((call, *a, *b, d, p));
                }
            }
        }
        out
    }
}

/// The Markdown report.
pub fn render(runs: &[EnumerationRun], per_kind: usize, padding_ms: u64, header: &str) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "# Enumeration by time\n\n{header}");
    let _ = writeln!(
        out,
        "{per_kind} samples per call and kind of account in each phase, jobs interleaved across kinds, every sample \
         on an account of its own. Pairs with a two-sample Kolmogorov–Smirnov p-value below {ALPHA} are ones an \
         attacker could tell apart.\n\n\
         - **Work alone**: public self-service padding off (`response_time_ms = 0`), login as in the demo \
         (enumeration protection off); 4 clients.\n\
         - **Padded**: `public_self_service.response_time_ms = {padding_ms}`, login with \
         `enumeration_protection = true` and `response_time_ms = {padding_ms}`; 16 clients.\n"
    );
    for run in runs {
        let _ = writeln!(out, "## {}\n", run.backend);
        for (title, samples) in [("Work alone", &run.raw), ("Padded", &run.padded)] {
            let _ = writeln!(out, "### {title}\n");
            samples_tables(&mut out, samples);
        }
        let _ = writeln!(out, "### Throughput\n");
        let _ = writeln!(out, "| calls/s | rate limits off | rate limits on | cost |\n|---|---:|---:|---:|");
        for (what, off, on) in &run.throughput {
            let cost = if *off > 0.0 { (1.0 - on / off) * 100.0 } else { 0.0 };
            let _ = writeln!(out, "| {what} | {off:.0} | {on:.0} | {cost:.1} % |");
        }
        let (real, unknown) = run.identify_by_kind;
        let _ = writeln!(
            out,
            "\nIdentify throughput by name (rate limits off): real names {real:.0}/s, unknown names {unknown:.0}/s.\n"
        );
        if run.failed_calls > 0 {
            let _ = writeln!(out, "**{} calls failed (transport error or 5xx).**\n", run.failed_calls);
        }
    }
    out
}

fn samples_tables(out: &mut String, samples: &Samples) {
    let _ = writeln!(out, "| call | kind | n | median ms | p90 ms | answers |\n|---|---|---:|---:|---:|---|");
    for call in CALLS {
        for kind in KINDS {
            let mut v = samples.latencies.get(&(call, kind)).cloned().unwrap_or_default();
            v.sort_unstable();
            let answers: Vec<String> = samples
                .answers
                .iter()
                .filter(|((c, k, _), _)| *c == call && *k == kind)
                .map(|((_, _, a), n)| format!("{a} ×{n}"))
                .collect();
            let _ = writeln!(
                out,
                "| {call} | {kind} | {} | {} | {} | {} |",
                v.len(),
                ms(percentile(&v, 0.5)),
                ms(percentile(&v, 0.9)),
                answers.join(", ")
            );
        }
    }
    let apart = samples.distinguishable();
    let verdict = if apart.is_empty() {
        "none".to_owned()
    } else {
        apart.iter().map(|(c, a, b, _, _)| format!("{c}: {a} / {b}")).collect::<Vec<_>>().join("; ")
    };
    let _ = writeln!(out, "\nPairs an attacker could tell apart by time (p < {ALPHA}): **{verdict}**.");
    let _ = writeln!(out, "\n| call | pair | D | p | tell apart? |\n|---|---|---:|---:|---|");
    for (call, a, b, d, p) in samples.pairs() {
        let verdict = if p < ALPHA { "**yes**" } else { "no" };
        let _ = writeln!(out, "| {call} | {a} / {b} | {d:.3} | {p:.3} | {verdict} |");
    }
    let _ = writeln!(out);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identical_samples_cannot_be_told_apart() {
        let a: Vec<f64> = (0..500).map(|i| f64::from(i % 97)).collect();
        let (d, p) = kolmogorov_smirnov(&a, &a);
        assert_eq!(d, 0.0);
        assert!((p - 1.0).abs() < 1e-9);
    }

    #[test]
    fn shifted_samples_are_told_apart() {
        let a: Vec<f64> = (0..500).map(f64::from).collect();
        let b: Vec<f64> = (0..500).map(|i| f64::from(i) + 1000.0).collect();
        let (d, p) = kolmogorov_smirnov(&a, &b);
        assert!((d - 1.0).abs() < 1e-9);
        assert!(p < 1e-6, "{p}");
    }

    #[test]
    fn the_statistic_is_the_largest_gap() {
        // F_a jumps at 1, 2, 3, 4; F_b at 3, 4, 5, 6: at x = 2, F_a = 0.5 and F_b = 0.
        let (d, _) = kolmogorov_smirnov(&[1.0, 2.0, 3.0, 4.0], &[3.0, 4.0, 5.0, 6.0]);
        assert!((d - 0.5).abs() < 1e-9, "{d}");
        // Known value: Q_KS(1.0) ≈ 0.2700.
        assert!((kolmogorov_q(1.0) - 0.2700).abs() < 1e-3);
    }
}
