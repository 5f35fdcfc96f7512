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
    pub identify: Vec<Duration>,
    /// identify sent → mail file written.
    pub mail_delay: Vec<Duration>,
    /// Mails not written within the wait after the load.
    pub missing: u64,
    /// How long clients started initiations.
    pub elapsed: Duration,
}

/// Runs `concurrency` clients for `duration` over `users` users (each user in one initiation at a time), then
/// waits up to `mail_wait` for the last mails.
pub async fn run(
    base: &str,
    outbox: Arc<Outbox>,
    users: usize,
    concurrency: usize,
    duration: Duration,
    mail_wait: Duration,
) -> anyhow::Result<Initiations> {
    let http =
        reqwest::Client::builder().timeout(Duration::from_secs(60)).pool_max_idle_per_host(concurrency).build()?;
    let next = Arc::new(AtomicUsize::new(0));
    let delays = Arc::new(Mutex::new(Vec::new()));
    let missing = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let deadline = started + duration;
    let mut clients = JoinSet::new();
    for _ in 0..concurrency.max(1) {
        let (http, next, base, outbox) = (http.clone(), next.clone(), base.to_owned(), outbox.clone());
        let (delays, missing) = (delays.clone(), missing.clone());
        clients.spawn(async move {
            let mut seen = Initiations::default();
            let mut waits = JoinSet::new();
            while Instant::now() < deadline {
                // Users in rotation: with enough users, one is never in two initiations at once.
                let user = next.fetch_add(1, Ordering::Relaxed) % users;
                let mut cookie = None;
                if post(&http, format!("{base}{SELECT}"), &mut cookie, None).await.is_err() {
                    seen.failed += 1;
                    continue;
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
                        let (delays, missing) = (delays.clone(), missing.clone());
                        waits.spawn(async move {
                            match tokio::time::timeout(mail_wait + duration, code).await {
                                Ok(Ok(mail)) => {
                                    let delay = mail.written.duration_since(sent).unwrap_or_default();
                                    delays.lock().unwrap_or_else(PoisonError::into_inner).push(delay);
                                }
                                _ => {
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
            seen
        });
    }
    let mut all = Initiations { elapsed: duration, ..Initiations::default() };
    while let Some(joined) = clients.join_next().await {
        let seen = joined?;
        all.ok += seen.ok;
        all.failed += seen.failed;
        all.identify.extend(seen.identify);
    }
    all.mail_delay = std::mem::take(&mut *delays.lock().unwrap_or_else(PoisonError::into_inner));
    all.missing = u64::try_from(missing.load(Ordering::Relaxed)).unwrap_or(u64::MAX);
    Ok(all)
}
