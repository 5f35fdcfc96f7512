//! The initiation scenario: clients start password resets as fast as the server answers (select + identify,
//! nothing more), and every OTP mail is timed from the moment identify was sent to the moment the server
//! wrote the mail file. Under such a burst the question is whether mail keeps up: does the queue grow, and how
//! long does a person wait for a code?

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant, SystemTime};

use gatehouse_core::clock::{Clock as _, SystemClock};
use serde_json::json;
use tokio::task::JoinSet;

use crate::flow::{IDENTIFY, email, post, username};
use crate::mail::Outbox;

const SELECT: &str = "/rest/public/self-service/flows/password-reset/select";

/// What the clients saw and how long the mails took.
#[derive(Debug, Default)]
pub struct Initiations {
    pub ok: u64,
    pub failed: u64,
    pub select: Vec<Duration>,
    pub identify: Vec<Duration>,
    /// Successful initiations per node (client i talks to node i % nodes).
    pub per_node: Vec<u64>,
    /// identify sent → mail file written.
    pub mail_delay: Vec<Duration>,
    /// Mails not written within the wait after the load.
    pub missing: u64,
    /// Mails no longer awaited because their user started another initiation first (every user was still
    /// waiting for a mail: too few `--users` for the mail delay).
    pub superseded: u64,
    /// How long clients started initiations.
    pub elapsed: Duration,
}

/// Runs `concurrency` clients for `duration` over `users` users (each user in one initiation at a time), then
/// waits up to `mail_wait` for the last mails. Client i talks to `bases[i % bases.len()]`.
pub async fn run(
    bases: &[String],
    outbox: Arc<Outbox>,
    users: usize,
    concurrency: usize,
    duration: Duration,
    mail_wait: Duration,
    rate: Option<u32>,
) -> anyhow::Result<Initiations> {
    // `--rate`: initiations start at most this often, whatever the clients could do (a paced load).
    let pace = rate.filter(|r| *r > 0).map(|r| {
        let mut ticker = tokio::time::interval(Duration::from_secs_f64(1.0 / f64::from(r)));
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        Arc::new(tokio::sync::Mutex::new(ticker))
    });
    let http =
        reqwest::Client::builder().timeout(Duration::from_secs(60)).pool_max_idle_per_host(concurrency).build()?;
    let next = Arc::new(AtomicUsize::new(0));
    let delays = Arc::new(Mutex::new(Vec::new()));
    let missing = Arc::new(AtomicUsize::new(0));
    let superseded = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let deadline = started + duration;
    let mut clients = JoinSet::new();
    if bases.is_empty() {
        anyhow::bail!("no server to load");
    }
    for client in 0..concurrency.max(1) {
        let node = client % bases.len();
        let (http, next, outbox) = (http.clone(), next.clone(), outbox.clone());
        let base = bases[node].clone();
        let (delays, missing, superseded) = (delays.clone(), missing.clone(), superseded.clone());
        let pace = pace.clone();
        clients.spawn(async move {
            let mut seen = Initiations::default();
            let mut waits = JoinSet::new();
            while Instant::now() < deadline {
                if let Some(pace) = &pace {
                    pace.lock().await.tick().await;
                }
                // Users in rotation: with enough users, one is never in two initiations at once. A user whose
                // last mail has not come yet is skipped (its next mail would be taken for the late one when the
                // watcher cannot tell them apart, as in a Maildir).
                let mut user = next.fetch_add(1, Ordering::Relaxed) % users;
                for _ in 0..users {
                    if !outbox.is_waiting(&email(user)) {
                        break;
                    }
                    user = next.fetch_add(1, Ordering::Relaxed) % users;
                }
                let mut cookie = None;
                let t = Instant::now();
                match post(&http, format!("{base}{SELECT}"), &mut cookie, None).await {
                    Ok((200, _)) if cookie.is_some() => seen.select.push(t.elapsed()),
                    _ => {
                        seen.failed += 1;
                        continue;
                    }
                }
                let address = email(user);
                let code = outbox.expect(&address, SystemClock.now_ms());
                let sent = SystemTime::now();
                let t = Instant::now();
                let body = json!({ "username": username(user) });
                match post(&http, format!("{base}{IDENTIFY}"), &mut cookie, Some(body)).await {
                    Ok((200, _)) => {
                        seen.ok += 1;
                        seen.identify.push(t.elapsed());
                        let (delays, missing, superseded) = (delays.clone(), missing.clone(), superseded.clone());
                        waits.spawn(async move {
                            match tokio::time::timeout(mail_wait + duration, code).await {
                                Ok(Ok(mail)) => {
                                    let delay = mail.written.duration_since(sent).unwrap_or_default();
                                    delays.lock().unwrap_or_else(PoisonError::into_inner).push(delay);
                                }
                                // The waiter was replaced: the user is in a newer initiation.
                                Ok(Err(_)) => {
                                    superseded.fetch_add(1, Ordering::Relaxed);
                                }
                                Err(_) => {
                                    missing.fetch_add(1, Ordering::Relaxed);
                                }
                            }
                        });
                    }
                    _ => {
                        outbox.forget(&address);
                        seen.failed += 1;
                    }
                }
            }
            while waits.join_next().await.is_some() {}
            (node, seen)
        });
    }
    let mut all = Initiations { elapsed: duration, per_node: vec![0; bases.len()], ..Initiations::default() };
    while let Some(joined) = clients.join_next().await {
        let (node, seen) = joined?;
        all.ok += seen.ok;
        all.failed += seen.failed;
        all.select.extend(seen.select);
        all.identify.extend(seen.identify);
        if let Some(n) = all.per_node.get_mut(node) {
            *n += seen.ok;
        }
    }
    all.mail_delay = std::mem::take(&mut *delays.lock().unwrap_or_else(PoisonError::into_inner));
    all.missing = u64::try_from(missing.load(Ordering::Relaxed)).unwrap_or(u64::MAX);
    all.superseded = u64::try_from(superseded.load(Ordering::Relaxed)).unwrap_or(u64::MAX);
    Ok(all)
}
