//! The client side: bench users, and C workers running whole password-reset flows back to back.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant, SystemTime};

use anyhow::anyhow;
use gatehouse_core::admin::{AddUser, InitialPassword, UserAdmin};
use gatehouse_core::clock::{Clock as _, SystemClock};
use gatehouse_core::config::PasswordPolicyConfig;
use gatehouse_core::crypto::{HashParams, Passwords};
use gatehouse_core::random::{Random as _, SystemRandom, random_code};
use gatehouse_store::OpenOptions;
use serde_json::{Value, json};
use tokio::task::JoinSet;

use crate::mail::Outbox;
use crate::server::Database;

/// Every bench user starts with this password; each reset replaces it with a random one.
pub const INITIAL_PASSWORD: &str = "Initial-Cobalt-Lantern-7";
const FLOW: &str = "/rest/public/self-service/flows/password-reset/select";
pub const IDENTIFY: &str = "/rest/public/self-service/username/identify/";
pub const OTP_CHECK: &str = "/rest/public/self-service/verification/email/otp/check/";
const PASSWORD_SET: &str = "/rest/public/self-service/password/set";

/// Bench user `i` is `bench{i}` with the email `bench{i}@example.test` (`gatehouse-bench seed` writes the same in
/// SQL).
pub const USERNAME_PREFIX: &str = "bench";
pub const EMAIL_DOMAIN: &str = "@example.test";

pub fn username(i: usize) -> String {
    format!("{USERNAME_PREFIX}{i}")
}

pub fn email(i: usize) -> String {
    format!("{USERNAME_PREFIX}{i}{EMAIL_DOMAIN}")
}

/// A fresh strong password: four groups of five random lower-case letters and digits (zxcvbn score 4).
pub fn new_password() -> String {
    let alphabet: Vec<char> = ('a'..='z').chain('0'..='9').collect();
    (0..4).map(|_| random_code(&SystemRandom, &alphabet, 5)).collect::<Vec<_>>().join("-")
}

/// Creates `bench0..benchN` with their email addresses through the service `gatehouse user add` uses,
/// hashing with the server's parameters (so the first reset of a user costs what every other does).
pub async fn create_users(db: &Database, params: HashParams, count: usize, workers: usize) -> anyhow::Result<()> {
    let store = gatehouse_store::open(&OpenOptions {
        url: db.url.clone(),
        schema: db.schema.clone(),
        max_connections: 4,
        migrate: true,
        lock_wait: std::time::Duration::from_secs(10),
    })
    .await
    .map_err(|e| anyhow!("cannot open the database: {e}"))?;
    let hasher = Arc::new(Passwords::new(params)?);
    let workers = workers.max(1);
    let mut tasks = JoinSet::new();
    for w in 0..workers {
        let store = store.clone();
        let hasher = hasher.clone();
        tasks.spawn(async move {
            let policy = PasswordPolicyConfig::default();
            let admin = UserAdmin {
                store: store.as_ref(),
                email_as_alias: false,
                hasher: hasher.as_ref(),
                policy: &policy,
                clock: &SystemClock,
                random: &SystemRandom,
                actor: "admin:bench".into(),
            };
            for i in (w..count).step_by(workers) {
                admin
                    .add(AddUser {
                        username: username(i),
                        email: Some(email(i)),
                        phone: None,
                        aliases: vec![],
                        roles: vec![],
                        context: BTreeMap::new(),
                        password: InitialPassword::Plain(INITIAL_PASSWORD.into()),
                    })
                    .await
                    .map_err(|e| anyhow!("cannot add {}: {e}", username(i)))?;
            }
            anyhow::Ok(())
        });
    }
    while let Some(joined) = tasks.join_next().await {
        joined??;
    }
    Ok(())
}

pub struct LoadOptions {
    pub base: String,
    pub users: usize,
    pub concurrency: usize,
    /// Start new flows until this much time has passed…
    pub duration: Duration,
    /// …or until this many flows were started.
    pub flows: Option<u64>,
    pub otp_timeout: Duration,
}

/// Latencies of successful calls (and waits), unsorted.
#[derive(Debug, Default)]
pub struct Samples {
    pub select: Vec<Duration>,
    pub identify: Vec<Duration>,
    pub otp_check: Vec<Duration>,
    pub password_set: Vec<Duration>,
    /// A whole successful flow, select to password set, including the OTP wait.
    pub flow: Vec<Duration>,
    /// From the identify response until the bench had read the OTP mail.
    pub otp_wait: Vec<Duration>,
    /// From sending identify until the server had written the mail file (its mtime).
    pub delivery_delay: Vec<Duration>,
}

impl Samples {
    fn merge(&mut self, other: Self) {
        self.select.extend(other.select);
        self.identify.extend(other.identify);
        self.otp_check.extend(other.otp_check);
        self.password_set.extend(other.password_set);
        self.flow.extend(other.flow);
        self.otp_wait.extend(other.otp_wait);
        self.delivery_delay.extend(other.delivery_delay);
    }
}

#[derive(Debug, Default)]
pub struct LoadResult {
    pub samples: Samples,
    pub ok: u64,
    /// Failed flows by cause, with one example.
    pub errors: BTreeMap<String, (u64, String)>,
    /// From the first flow's start until the last worker finished.
    pub elapsed: Duration,
}

impl LoadResult {
    pub fn error_count(&self) -> u64 {
        self.errors.values().map(|(n, _)| n).sum()
    }

    fn merge(&mut self, other: Self) {
        self.samples.merge(other.samples);
        self.ok += other.ok;
        for (key, (n, example)) in other.errors {
            let entry = self.errors.entry(key).or_insert((0, example));
            entry.0 += n;
        }
    }
}

/// Why a flow failed: `key` groups failures in the report, `detail` is one example.
pub struct Failure {
    pub key: String,
    pub detail: String,
}

pub fn failure(key: impl Into<String>, detail: impl Into<String>) -> Failure {
    let mut detail: String = detail.into();
    if detail.len() > 300 {
        let mut cut = 300;
        while !detail.is_char_boundary(cut) {
            cut -= 1;
        }
        detail.truncate(cut);
    }
    Failure { key: key.into(), detail }
}

/// Users not in a flow right now: two flows never reset the same user at the same time.
struct UserPool(Mutex<Vec<usize>>);

impl UserPool {
    fn take(&self) -> Option<usize> {
        let mut free = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        if free.is_empty() {
            return None;
        }
        let pick = usize::try_from(SystemRandom.next_u64() % free.len() as u64).unwrap_or(0);
        Some(free.swap_remove(pick))
    }

    fn give_back(&self, user: usize) {
        self.0.lock().unwrap_or_else(PoisonError::into_inner).push(user);
    }
}

struct Shared {
    http: reqwest::Client,
    options: LoadOptions,
    outbox: Arc<Outbox>,
    users: UserPool,
    deadline: Instant,
    started: AtomicU64,
}

/// Runs the load and returns what the clients saw.
pub async fn run(options: LoadOptions, outbox: Arc<Outbox>) -> anyhow::Result<LoadResult> {
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(60))
        .pool_max_idle_per_host(options.concurrency)
        .build()?;
    let start = Instant::now();
    let shared = Arc::new(Shared {
        http,
        users: UserPool(Mutex::new((0..options.users).collect())),
        deadline: start + options.duration,
        options,
        outbox,
        started: AtomicU64::new(0),
    });
    let mut workers = JoinSet::new();
    for _ in 0..shared.options.concurrency {
        let shared = shared.clone();
        workers.spawn(async move { worker(&shared).await });
    }
    let mut total = LoadResult::default();
    while let Some(joined) = workers.join_next().await {
        total.merge(joined?);
    }
    total.elapsed = start.elapsed();
    Ok(total)
}

async fn worker(shared: &Shared) -> LoadResult {
    let mut result = LoadResult::default();
    loop {
        match shared.options.flows {
            Some(n) if shared.started.fetch_add(1, Ordering::Relaxed) >= n => break,
            None if Instant::now() >= shared.deadline => break,
            _ => {}
        }
        let Some(user) = shared.users.take() else {
            // More workers than users: cannot happen, main checks it.
            break;
        };
        let outcome = one_flow(shared, user, &mut result.samples).await;
        shared.users.give_back(user);
        match outcome {
            Ok(()) => result.ok += 1,
            Err(f) => {
                let entry = result.errors.entry(f.key).or_insert((0, f.detail));
                entry.0 += 1;
            }
        }
    }
    result
}

/// One POST to `url` with the flow cookie, CSRF header and JSON type; returns status and body.
pub async fn post(
    http: &reqwest::Client,
    url: String,
    cookie: &mut Option<String>,
    body: Option<Value>,
) -> Result<(u16, Value), reqwest::Error> {
    let mut req = http.post(url).header("content-type", "application/json").header("x-same-domain", "1");
    if let Some(c) = cookie.as_deref() {
        req = req.header("cookie", format!("gatehouse_flow={c}"));
    }
    if let Some(b) = body {
        req = req.body(b.to_string());
    }
    let res = req.send().await?;
    let status = res.status().as_u16();
    for sc in res.headers().get_all("set-cookie") {
        if let Some(v) = sc.to_str().ok().and_then(|s| s.strip_prefix("gatehouse_flow=")) {
            let v = v.split(';').next().unwrap_or("");
            *cookie = if v.is_empty() { None } else { Some(v.to_owned()) };
        }
    }
    let text = res.text().await?;
    let body = if text.is_empty() { Value::Null } else { serde_json::from_str(&text).unwrap_or(Value::String(text)) };
    Ok((status, body))
}

/// One call of the flow: must answer 200 with the expected `nextStep` (none after the last step).
async fn step(
    shared: &Shared,
    name: &str,
    path: &str,
    cookie: &mut Option<String>,
    body: Option<Value>,
    next: Option<&str>,
) -> Result<Duration, Failure> {
    let t = Instant::now();
    let (status, body) = post(&shared.http, format!("{}{path}", shared.options.base), cookie, body)
        .await
        .map_err(|e| failure(format!("{name}: transport error"), e.to_string()))?;
    let took = t.elapsed();
    if status != 200 {
        return Err(failure(format!("{name}: HTTP {status}"), body.to_string()));
    }
    let got = body["data"]["attributes"]["nextStep"].as_str().or_else(|| body["meta"]["nextStep"].as_str());
    if got != next {
        return Err(failure(format!("{name}: nextStep {got:?} instead of {next:?}"), body.to_string()));
    }
    Ok(took)
}

async fn one_flow(shared: &Shared, user: usize, samples: &mut Samples) -> Result<(), Failure> {
    let address = email(user);
    let mut cookie = None;
    let started = Instant::now();

    samples.select.push(step(shared, "select", FLOW, &mut cookie, None, Some("USERNAME_REQUIRED")).await?);
    if cookie.is_none() {
        return Err(failure("select: no gatehouse_flow cookie", ""));
    }

    let code = shared.outbox.expect(&address, SystemClock.now_ms());
    let identify_sent = SystemTime::now();
    let identify = step(
        shared,
        "identify",
        IDENTIFY,
        &mut cookie,
        Some(json!({ "username": username(user) })),
        Some("EMAIL_OTP_REQUIRED"),
    )
    .await;
    let identify = identify.inspect_err(|_| shared.outbox.forget(&address))?;
    samples.identify.push(identify);
    let identified = Instant::now();
    let mail = match tokio::time::timeout(shared.options.otp_timeout, code).await {
        Ok(Ok(mail)) => mail,
        _ => {
            shared.outbox.forget(&address);
            return Err(failure(
                "otp mail: not received",
                format!("no OTP mail to {address} within {} s", shared.options.otp_timeout.as_secs()),
            ));
        }
    };
    samples.otp_wait.push(identified.elapsed());
    samples.delivery_delay.push(mail.written.duration_since(identify_sent).unwrap_or(Duration::ZERO));

    let check = Some(json!({ "otp": mail.otp }));
    samples
        .otp_check
        .push(step(shared, "otp check", OTP_CHECK, &mut cookie, check, Some("NEW_PASSWORD_REQUIRED")).await?);
    let set = Some(json!({ "newPassword": new_password() }));
    samples.password_set.push(step(shared, "password set", PASSWORD_SET, &mut cookie, set, None).await?);
    samples.flow.push(started.elapsed());
    Ok(())
}
