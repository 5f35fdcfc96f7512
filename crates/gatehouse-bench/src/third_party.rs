//! The third-party scenario: an application's second-factor round trip — `/v1/authenticate` held open while the
//! person decides, the device's signed list of pending requests and its signed approval, `/v1/token` — as fast
//! as the server answers; then what waiting calls cost: many `/v1/authenticate` calls held open at once, the
//! server's memory before and while they wait.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context as _, anyhow, bail};
use gatehouse_core::authenticator::{DeviceKey, approval_message, encode, request_message};
use gatehouse_core::clock::{Clock as _, SystemClock};
use gatehouse_core::random::{Random as _, SystemRandom};
use serde_json::{Value, json};
use tokio::task::JoinSet;

/// A software authenticator enrolled for one person, as the CLI's.
pub struct Device {
    base: String,
    id: String,
    key: DeviceKey,
}

/// An application of the run: its API key and the people it enrolled, each with a device.
pub struct Enrolled {
    pub key: String,
    pub people: Vec<(String, Device)>,
}

pub fn email(i: usize) -> String {
    format!("person{i}@example.test")
}

async fn json_of(response: reqwest::Response) -> anyhow::Result<(u16, Value)> {
    let status = response.status().as_u16();
    let text = response.text().await?;
    Ok((status, serde_json::from_str(&text).unwrap_or(Value::String(text))))
}

/// A v1 call with the application's key.
async fn v1(http: &reqwest::Client, base: &str, key: &str, path: &str, body: Value) -> anyhow::Result<(u16, Value)> {
    let response = http
        .post(format!("{base}{path}"))
        .header("authorization", format!("Bearer {key}"))
        .header("content-type", "application/json")
        .body(body.to_string())
        .send()
        .await?;
    json_of(response).await
}

impl Device {
    async fn activate(http: &reqwest::Client, base: &str, code: &str) -> anyhow::Result<Self> {
        let key = DeviceKey::generate(&SystemRandom);
        let mut offline = [0u8; 32];
        SystemRandom.fill(&mut offline);
        let body = json!({ "code": code, "publicKey": key.public_key(), "offlineKey": encode(&offline), "displayName": "bench" });
        let response = http
            .post(format!("{base}/rest/device/activate"))
            .header("x-same-domain", "1")
            .header("content-type", "application/json")
            .body(body.to_string())
            .send()
            .await?;
        let (status, answer) = json_of(response).await?;
        let id = answer["data"]["attributes"]["deviceId"].as_str().filter(|_| (200..300).contains(&status));
        let id = id.ok_or_else(|| anyhow!("activation: HTTP {status}: {answer}"))?.to_owned();
        Ok(Self { base: base.to_owned(), id, key })
    }

    /// The pending requests (id, nonce), waiting up to `wait_secs` for one.
    pub async fn pending(&self, http: &reqwest::Client, wait_secs: u64) -> anyhow::Result<Vec<(String, String)>> {
        let path = format!("/rest/device/approvals?wait={wait_secs}");
        let ts = SystemClock.now_ms();
        let response = http
            .get(format!("{}{path}", self.base))
            .header("x-device-id", &self.id)
            .header("x-device-timestamp", ts.to_string())
            .header("x-device-signature", self.key.sign(&request_message("GET", &path, ts, b"")))
            .send()
            .await?;
        let (status, answer) = json_of(response).await?;
        if status != 200 {
            bail!("pending: HTTP {status}: {answer}");
        }
        let list = answer["data"].as_array().cloned().unwrap_or_default();
        Ok(list
            .iter()
            .filter_map(|a| Some((a["id"].as_str()?.to_owned(), a["attributes"]["nonce"].as_str()?.to_owned())))
            .collect())
    }

    /// Approves a request without a number (an application's server-to-server push has none).
    pub async fn approve(&self, http: &reqwest::Client, id: &str, nonce: &str) -> anyhow::Result<()> {
        let signature = self.key.sign(&approval_message(id, nonce, "approve", 0));
        let body = json!({ "deviceId": self.id, "decision": "approve", "number": 0, "signature": signature });
        let response = http
            .post(format!("{}/rest/device/approvals/{id}/decision", self.base))
            .header("x-same-domain", "1")
            .header("content-type", "application/json")
            .body(body.to_string())
            .send()
            .await?;
        let (status, answer) = json_of(response).await?;
        if status != 200 {
            bail!("decision: HTTP {status}: {answer}");
        }
        Ok(())
    }
}

/// Registers the application `bench` with the server's own CLI and enrolls `people` addresses, each activating a
/// software device.
pub async fn setup(bin: &Path, config: &Path, base: &str, people: usize) -> anyhow::Result<Enrolled> {
    let out = std::process::Command::new(bin)
        .arg("--config")
        .arg(config)
        .args(["app", "create", "bench", "--origin", "https://bench.example"])
        .output()
        .context("gatehouse app create")?;
    if !out.status.success() {
        bail!("gatehouse app create: {}", String::from_utf8_lossy(&out.stderr));
    }
    let key = String::from_utf8(out.stdout)?.trim().to_owned();
    let http = reqwest::Client::new();
    let mut enrolled = Enrolled { key, people: Vec::with_capacity(people) };
    for i in 0..people {
        let (status, answer) = v1(&http, base, &enrolled.key, "/v1/enroll", json!({ "email": email(i) })).await?;
        let code = answer["result"]["activation_code"].as_str().filter(|_| status == 200);
        let code = code.ok_or_else(|| anyhow!("enroll: HTTP {status}: {answer}"))?;
        enrolled.people.push((email(i), Device::activate(&http, base, code).await?));
    }
    Ok(enrolled)
}

/// What the round-trip clients saw.
#[derive(Debug, Default)]
pub struct RoundTrips {
    pub completed: u64,
    pub failed: u64,
    pub first_failure: Option<String>,
    pub durations: Vec<Duration>,
    pub elapsed: Duration,
}

/// One round trip for person `email` with `device`: authenticate (held until the device decides), the device's
/// list and approval, the token exchange.
async fn round_trip(http: &reqwest::Client, base: &str, key: &str, email: &str, device: &Device) -> anyhow::Result<()> {
    let call = {
        let (http, base, key) = (http.clone(), base.to_owned(), key.to_owned());
        let body = json!({ "email": email, "ip": "198.51.100.7" });
        tokio::spawn(async move { v1(&http, &base, &key, "/v1/authenticate", body).await })
    };
    let deadline = Instant::now() + Duration::from_secs(20);
    let (id, nonce) = loop {
        if let Some(first) = device.pending(http, 5).await?.into_iter().next() {
            break first;
        }
        if Instant::now() > deadline {
            bail!("the request never reached the device");
        }
    };
    device.approve(http, &id, &nonce).await?;
    let (status, answer) = call.await??;
    let token = answer["result"]["token"].as_str().filter(|_| status == 200);
    let token = token.ok_or_else(|| anyhow!("authenticate: HTTP {status}: {answer}"))?;
    let (status, answer) = v1(http, base, key, "/v1/token", json!({ "token": token })).await?;
    if status != 200 || answer["result"]["email"] != email {
        bail!("token: HTTP {status}: {answer}");
    }
    Ok(())
}

/// Each client owns one person (their requests never mix) and runs round trips back to back for `duration`.
pub async fn run(
    base: &str,
    enrolled: Arc<Enrolled>,
    clients: usize,
    duration: Duration,
) -> anyhow::Result<RoundTrips> {
    let http = reqwest::Client::builder().timeout(Duration::from_secs(60)).build()?;
    let started = Instant::now();
    let mut tasks = JoinSet::new();
    for c in 0..clients.min(enrolled.people.len()) {
        let (http, base, enrolled) = (http.clone(), base.to_owned(), enrolled.clone());
        tasks.spawn(async move {
            let mut seen = RoundTrips::default();
            let (email, device) = &enrolled.people[c];
            while started.elapsed() < duration {
                let t = Instant::now();
                match round_trip(&http, &base, &enrolled.key, email, device).await {
                    Ok(()) => {
                        seen.completed += 1;
                        seen.durations.push(t.elapsed());
                    }
                    Err(e) => {
                        seen.failed += 1;
                        seen.first_failure.get_or_insert_with(|| e.to_string());
                    }
                }
            }
            seen
        });
    }
    let mut all = RoundTrips::default();
    while let Some(done) = tasks.join_next().await {
        let seen = done?;
        all.completed += seen.completed;
        all.failed += seen.failed;
        all.durations.extend(seen.durations);
        if all.first_failure.is_none() {
            all.first_failure = seen.first_failure;
        }
    }
    all.elapsed = started.elapsed();
    Ok(all)
}

/// What holding calls open cost.
#[derive(Debug)]
pub struct Held {
    pub calls: usize,
    pub rss_before_kib: u64,
    pub rss_waiting_kib: u64,
    /// How long it took until every call's request was on a device.
    pub all_waiting_after: Duration,
    /// CPU over [`QUIET`] while every call waits and nothing happens: the server, and the rest of the machine
    /// (PostgreSQL).
    pub waiting_cpu: crate::server::CpuUse,
    pub answered: usize,
}

/// How long the held calls are watched doing nothing: with the time they take to start and to be approved, within
/// the 20 s a `/v1/authenticate` call waits.
pub const QUIET: Duration = Duration::from_secs(5);

/// Opens `calls` `/v1/authenticate` calls at once (spread over the people), waits until every request is on a
/// device, reads the server's memory and watches the CPU for [`QUIET`], then approves them all and counts the
/// answers.
pub async fn hold(base: &str, enrolled: &Enrolled, server_pid: u32, calls: usize) -> anyhow::Result<Held> {
    let http = reqwest::Client::builder().timeout(Duration::from_secs(60)).pool_max_idle_per_host(0).build()?;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let rss_before_kib = crate::server::status_kib(server_pid, "VmRSS")?;
    let started = Instant::now();
    let mut tasks = JoinSet::new();
    for i in 0..calls {
        let (http, base, key) = (http.clone(), base.to_owned(), enrolled.key.clone());
        let email = enrolled.people[i % enrolled.people.len()].0.clone();
        tasks.spawn(async move { v1(&http, &base, &key, "/v1/authenticate", json!({ "email": email })).await });
    }
    let mut pending = Vec::new();
    loop {
        pending.clear();
        for (_, device) in &enrolled.people {
            for (id, nonce) in device.pending(&http, 0).await? {
                pending.push((device, id, nonce));
            }
        }
        if pending.len() >= calls {
            break;
        }
        if started.elapsed() > Duration::from_secs(25) {
            bail!("only {} of {calls} requests reached the devices within 25 s", pending.len());
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let all_waiting_after = started.elapsed();
    let rss_waiting_kib = crate::server::status_kib(server_pid, "VmRSS")?;
    let quiet_from = crate::server::CpuSnapshot::take(server_pid)?;
    tokio::time::sleep(QUIET).await;
    let waiting_cpu = crate::server::CpuSnapshot::take(server_pid)?.since(&quiet_from, crate::server::clock_ticks());
    for (device, id, nonce) in &pending {
        device.approve(&http, id, nonce).await?;
    }
    let mut answered = 0;
    while let Some(done) = tasks.join_next().await {
        if matches!(done?, Ok((200, _))) {
            answered += 1;
        }
    }
    Ok(Held { calls, rss_before_kib, rss_waiting_kib, all_waiting_after, waiting_cpu, answered })
}
