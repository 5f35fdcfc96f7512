//! The login scenario's clients: C workers logging bench users in with their password, back to back, and
//! optionally a flood of wrong passwords against one other user at the same time.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use gatehouse_core::random::{Random as _, SystemRandom};
use serde_json::{Value, json};
use tokio::task::JoinSet;

use crate::flow::{Failure, INITIAL_PASSWORD, failure, username};

pub const PASSWORD_CHECK: &str = "/rest/public/authentication/password/check/";
/// A wrong password the flood sends (policy-irrelevant: it is only checked, never stored).
pub const WRONG_PASSWORD: &str = "Wrong-Cobalt-Lantern-0";

pub struct LoginOptions {
    pub base: String,
    /// Good users `bench0 … bench{users-1}`, logged in at random.
    pub users: usize,
    pub concurrency: usize,
    /// Start new logins until this much time has passed (logins in progress still finish and count).
    pub duration: Duration,
    /// The flood's target and its clients; no flood when `None`.
    pub flood: Option<(String, usize)>,
}

/// What the good clients saw.
#[derive(Debug, Default)]
pub struct LoginLoad {
    pub ok: u64,
    /// Latency of every successful login call, unsorted.
    pub latencies: Vec<Duration>,
    /// Failed logins by cause, with one example.
    pub errors: BTreeMap<String, (u64, String)>,
    /// From the start until the last good client finished.
    pub elapsed: Duration,
}

impl LoginLoad {
    pub fn error_count(&self) -> u64 {
        self.errors.values().map(|(n, _)| n).sum()
    }

    pub fn per_second(&self) -> f64 {
        self.ok as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }

    fn merge(&mut self, other: Self) {
        self.ok += other.ok;
        self.latencies.extend(other.latencies);
        for (key, (n, example)) in other.errors {
            self.errors.entry(key).or_insert((0, example)).0 += n;
        }
    }
}

/// What the flood clients got back.
#[derive(Debug, Default)]
pub struct FloodLoad {
    pub clients: usize,
    pub requests: u64,
    /// Answers by `HTTP status + error code` (or `transport error`), with one example body.
    pub answers: BTreeMap<String, (u64, String)>,
    /// Latencies by the same key, unsorted.
    pub latencies: BTreeMap<String, Vec<Duration>>,
    pub elapsed: Duration,
}

impl FloodLoad {
    pub const WRONG: &str = "400 USERNAME_PASSWORD_WRONG";
    pub const LOCKED: &str = "403 USER_LOCKED";
    pub const OVERLOADED: &str = "503 SERVICE_OVERLOADED";

    pub fn count(&self, key: &str) -> u64 {
        self.answers.get(key).map_or(0, |(n, _)| *n)
    }

    /// Answers that are none of the three expected ones.
    pub fn unexpected(&self) -> u64 {
        self.requests - self.count(Self::WRONG) - self.count(Self::LOCKED) - self.count(Self::OVERLOADED)
    }

    pub fn per_second(&self) -> f64 {
        self.requests as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }

    /// Flood answers that cost the server an argon2 verification (a real or a dummy one): all but 503.
    pub fn hashed(&self) -> u64 {
        self.count(Self::WRONG) + self.count(Self::LOCKED)
    }

    fn merge(&mut self, other: Self) {
        self.requests += other.requests;
        for (key, v) in other.latencies {
            self.latencies.entry(key).or_default().extend(v);
        }
        for (key, (n, example)) in other.answers {
            self.answers.entry(key).or_insert((0, example)).0 += n;
        }
    }
}

/// One password check without any cookie (so a fresh flow): status, body and whether a session cookie came.
pub async fn check(
    http: &reqwest::Client,
    url: &str,
    user: &str,
    password: &str,
) -> Result<(u16, Value, bool), String> {
    let res = http
        .post(url)
        .header("content-type", "application/json")
        .header("x-same-domain", "1")
        .body(json!({ "username": user, "password": password }).to_string())
        .send()
        .await
        .map_err(|e| e.to_string())?;
    let status = res.status().as_u16();
    let session = res
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok()?.strip_prefix("gatehouse_session="))
        .any(|v| !v.starts_with(';') && !v.is_empty());
    let text = res.text().await.map_err(|e| e.to_string())?;
    let body = if text.is_empty() { Value::Null } else { serde_json::from_str(&text).unwrap_or(Value::String(text)) };
    Ok((status, body, session))
}

pub fn error_code(body: &Value) -> &str {
    body["errors"][0]["code"].as_str().unwrap_or("-")
}

/// Runs the good clients (and the flood, if any) and returns what they saw.
pub async fn run(options: LoginOptions) -> anyhow::Result<(LoginLoad, Option<FloodLoad>)> {
    let flood_clients = options.flood.as_ref().map_or(0, |(_, n)| *n);
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(60))
        .pool_max_idle_per_host(options.concurrency + flood_clients)
        .build()?;
    let url = Arc::new(format!("{}{PASSWORD_CHECK}", options.base));
    let start = Instant::now();
    let deadline = start + options.duration;

    let mut flood = JoinSet::new();
    if let Some((target, clients)) = &options.flood {
        let target = Arc::new(target.clone());
        for _ in 0..*clients {
            let (http, url, target) = (http.clone(), url.clone(), target.clone());
            flood.spawn(async move { flood_worker(&http, &url, &target, deadline).await });
        }
    }
    let mut good = JoinSet::new();
    for _ in 0..options.concurrency {
        let (http, url, users) = (http.clone(), url.clone(), options.users);
        good.spawn(async move { login_worker(&http, &url, users, deadline).await });
    }

    let mut logins = LoginLoad::default();
    while let Some(joined) = good.join_next().await {
        logins.merge(joined?);
    }
    logins.elapsed = start.elapsed();
    if options.flood.is_none() {
        return Ok((logins, None));
    }
    let mut total = FloodLoad { clients: flood_clients, ..FloodLoad::default() };
    while let Some(joined) = flood.join_next().await {
        total.merge(joined?);
    }
    total.elapsed = start.elapsed();
    Ok((logins, Some(total)))
}

async fn login_worker(http: &reqwest::Client, url: &str, users: usize, deadline: Instant) -> LoginLoad {
    let mut result = LoginLoad::default();
    while Instant::now() < deadline {
        let user = usize::try_from(SystemRandom.next_u64() % users.max(1) as u64).unwrap_or(0);
        let t = Instant::now();
        match one_login(http, url, &username(user)).await {
            Ok(()) => {
                result.latencies.push(t.elapsed());
                result.ok += 1;
            }
            Err(f) => result.errors.entry(f.key).or_insert((0, f.detail)).0 += 1,
        }
    }
    result
}

/// A good login: must answer 200 with `data.attributes == {}` (logged in) and set a session cookie.
async fn one_login(http: &reqwest::Client, url: &str, user: &str) -> Result<(), Failure> {
    let (status, body, session) =
        check(http, url, user, INITIAL_PASSWORD).await.map_err(|e| failure("transport error", e))?;
    if status != 200 {
        return Err(failure(format!("HTTP {status} {}", error_code(&body)), body.to_string()));
    }
    if body["data"]["attributes"] != json!({}) {
        return Err(failure("200 but not logged in (attributes not {})", body.to_string()));
    }
    if !session {
        return Err(failure("200 without a gatehouse_session cookie", body.to_string()));
    }
    Ok(())
}

async fn flood_worker(http: &reqwest::Client, url: &str, target: &str, deadline: Instant) -> FloodLoad {
    let mut result = FloodLoad::default();
    while Instant::now() < deadline {
        let t = Instant::now();
        let (key, example) = match check(http, url, target, WRONG_PASSWORD).await {
            Ok((status, body, _)) => (format!("{status} {}", error_code(&body)), body.to_string()),
            Err(e) => ("transport error".to_owned(), e),
        };
        result.latencies.entry(key.clone()).or_default().push(t.elapsed());
        result.requests += 1;
        result.answers.entry(key).or_insert((0, failure("", example).detail)).0 += 1;
    }
    result
}
