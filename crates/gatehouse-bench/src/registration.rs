//! The registration scenario: clients register new accounts through the demo's default flow as fast as the
//! server answers — select, solve the CAPTCHA, data, continue, the emailed code, password, acknowledge — and
//! what one CAPTCHA costs: the server's check (in process, and the store's single-use insert) and a client's
//! solve at a given difficulty.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context as _, anyhow};
use gatehouse_core::clock::{Clock as _, SystemClock};
use gatehouse_core::config::CaptchaConfig;
use gatehouse_core::crypto::ServerKey;
use gatehouse_core::random::{SystemRandom, random_id};
use gatehouse_core::registration::captcha;
use serde_json::{Value, json};
use tokio::task::JoinSet;

use crate::mail::Outbox;

const BASE: &str = "/rest/public/user-self-registration";
const COOKIE: &str = "gatehouse_registration";
pub const PASSWORD: &str = "Lantern-Meadow-Quartz-17";

/// What the clients saw.
#[derive(Debug, Default)]
pub struct Registrations {
    pub completed: u64,
    pub failed: u64,
    pub first_failure: Option<String>,
    /// Whole registrations, select to acknowledge (the client's CAPTCHA solving included).
    pub durations: Vec<Duration>,
    /// Client time spent solving CAPTCHAs.
    pub solving: Duration,
    pub elapsed: Duration,
}

/// One POST with the registration cookie; status and body.
async fn post(
    http: &reqwest::Client,
    url: String,
    cookie: &mut Option<String>,
    body: Value,
) -> anyhow::Result<(u16, Value)> {
    let mut req =
        http.post(url).header("content-type", "application/json").header("x-same-domain", "1").body(body.to_string());
    if let Some(c) = cookie.as_deref() {
        req = req.header("cookie", format!("{COOKIE}={c}"));
    }
    let res = req.send().await?;
    let status = res.status().as_u16();
    for sc in res.headers().get_all("set-cookie") {
        if let Some(v) = sc.to_str().ok().and_then(|s| s.strip_prefix(&format!("{COOKIE}="))) {
            let v = v.split(';').next().unwrap_or("");
            *cookie = if v.is_empty() { None } else { Some(v.to_owned()) };
        }
    }
    let text = res.text().await?;
    Ok((status, serde_json::from_str(&text).unwrap_or(Value::String(text))))
}

/// One call that must answer 200 with `next` as its next step.
async fn step(
    http: &reqwest::Client,
    base: &str,
    path: &str,
    cookie: &mut Option<String>,
    body: Value,
    next: Option<&str>,
) -> anyhow::Result<Value> {
    let (status, answer) = post(http, format!("{base}{BASE}/{path}"), cookie, body).await?;
    let got = answer["data"]["attributes"]["nextStep"].as_str();
    if status != 200 || got != next {
        return Err(anyhow!("{path}: HTTP {status}, expected next step {next:?}: {answer}"));
    }
    Ok(answer)
}

/// One whole registration of `email`; the client time spent solving the CAPTCHA.
async fn register(http: &reqwest::Client, base: &str, outbox: &Outbox, email: &str) -> anyhow::Result<Duration> {
    let mut cookie = None;
    let selected =
        step(http, base, "register/select/", &mut cookie, json!({}), Some("USER_DATA_REGISTRATION_REQUIRED")).await?;
    let challenge: captcha::Challenge = serde_json::from_value(selected["data"]["attributes"]["captcha"].clone())
        .context("the select answer has no CAPTCHA")?;
    let t = Instant::now();
    let solution = tokio::task::spawn_blocking(move || captcha::solve(&challenge))
        .await?
        .context("the CAPTCHA has no solution")?;
    let solving = t.elapsed();
    let data = json!({ "email": email, "givenname": "Bench", "surname": "Mark", "captcha": solution });
    step(http, base, "registration/data/", &mut cookie, data, Some("USER_DATA_REGISTRATION_POSSIBLE")).await?;
    let code = outbox.expect(email, SystemClock.now_ms());
    step(http, base, "registration/continue", &mut cookie, json!({}), Some("EMAIL_VERIFICATION_REQUIRED")).await?;
    let mail = tokio::time::timeout(Duration::from_secs(30), code).await.context("no code mail within 30 s")??;
    let otp = json!({ "otp": mail.otp });
    step(http, base, "verification/email/otp/check/", &mut cookie, otp, Some("PASSWORD_REGISTRATION_REQUIRED")).await?;
    let pw = json!({ "password": PASSWORD });
    step(http, base, "registration/password/", &mut cookie, pw, Some("ACKNOWLEDGE_MESSAGE_REQUIRED")).await?;
    step(http, base, "acknowledge/", &mut cookie, json!({}), None).await?;
    Ok(solving)
}

/// `concurrency` clients register fresh addresses for `duration`.
pub async fn run(
    base: &str,
    outbox: Arc<Outbox>,
    concurrency: usize,
    duration: Duration,
) -> anyhow::Result<Registrations> {
    let http =
        reqwest::Client::builder().timeout(Duration::from_secs(60)).pool_max_idle_per_host(concurrency).build()?;
    let run_id = random_id(&SystemRandom)[..8].to_owned();
    let next = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let deadline = started + duration;
    let mut clients = JoinSet::new();
    for _ in 0..concurrency.max(1) {
        let (http, next, base, outbox, run_id) =
            (http.clone(), next.clone(), base.to_owned(), outbox.clone(), run_id.clone());
        clients.spawn(async move {
            let mut seen = Registrations::default();
            while Instant::now() < deadline {
                let email = format!("reg{}-{run_id}@example.test", next.fetch_add(1, Ordering::Relaxed));
                let t = Instant::now();
                match register(&http, &base, &outbox, &email).await {
                    Ok(solving) => {
                        seen.completed += 1;
                        seen.solving += solving;
                        seen.durations.push(t.elapsed());
                    }
                    Err(e) => {
                        outbox.forget(&email);
                        seen.failed += 1;
                        seen.first_failure.get_or_insert_with(|| format!("{e:#}"));
                    }
                }
            }
            seen
        });
    }
    let mut all = Registrations::default();
    while let Some(joined) = clients.join_next().await {
        let seen = joined?;
        all.completed += seen.completed;
        all.failed += seen.failed;
        all.solving += seen.solving;
        all.durations.extend(seen.durations);
        if all.first_failure.is_none() {
            all.first_failure = seen.first_failure;
        }
    }
    all.elapsed = started.elapsed();
    Ok(all)
}

/// Client solve times of `samples` challenges at `max_number` (one thread, this build).
pub fn solve_times(max_number: u64, samples: usize) -> anyhow::Result<Vec<Duration>> {
    let key = ServerKey::from_bytes(&[9u8; 32])?;
    let config = CaptchaConfig { max_number, validity_seconds: 600 };
    let mut times = Vec::with_capacity(samples);
    for _ in 0..samples {
        let challenge = captcha::create(&key, &SystemRandom, &config, SystemClock.now_ms());
        let t = Instant::now();
        captcha::solve(&challenge).context("unsolvable challenge")?;
        times.push(t.elapsed());
    }
    times.sort_unstable();
    Ok(times)
}

/// The server's in-process cost of checking one solution (decode, SHA-256, HMAC, expiry), averaged.
pub fn verify_cost(samples: u32) -> anyhow::Result<Duration> {
    let key = ServerKey::from_bytes(&[9u8; 32])?;
    let config = CaptchaConfig { max_number: 1000, validity_seconds: 600 };
    let now = SystemClock.now_ms();
    let payloads: Vec<String> = (0..64)
        .map(|_| captcha::solve(&captcha::create(&key, &SystemRandom, &config, now)).context("unsolvable"))
        .collect::<anyhow::Result<_>>()?;
    let t = Instant::now();
    for i in 0..samples {
        let payload = &payloads[i as usize % payloads.len()];
        captcha::verify(&key, payload, now).map_err(|e| anyhow!("{e}"))?;
    }
    Ok(t.elapsed() / samples.max(1))
}
