//! Housekeeping: spent rows (expired flow sessions, used link tokens, spent rate-limit windows, stale check
//! slots, finished messages, decided approvals, used activations, ended sessions, expired CAPTCHA solutions, audit events past retention)
//! are removed continuously, in small batches, on every node. A task runs on one node at a time: before its
//! round a node takes the task's lease in the database, so two nodes never do the same work, and a node that
//! dies hands its tasks over when the lease runs out.

use std::time::Duration;

use gatehouse_core::clock::Millis;
use gatehouse_core::config::Config;
use gatehouse_core::ports::{Spent, Store, StoreError};
use tokio::sync::watch;

use crate::state::AppState;

/// Rows one statement removes: small enough that no table is locked for long. On SQLite a batch holds the one
/// write lock of the database: 100 rows (a few hundred pages of random index entries) take a few ms; 500 took
/// 30 ms and more on a table of millions.
pub const BATCH: i64 = 100;
/// Batches one task runs per round at most; a task with more to do makes the next round start at once.
const MAX_BATCHES: u32 = 200;
/// The least pause after a batch; it is as long as the batch took, if that is longer. On SQLite, requests that
/// wait for the write lock poll for it (after 1, 2, 5, 10 ms…): a mere yield would let the next batch take the
/// lock again before them, so that a round of batches blocked them for its whole length.
const PAUSE: Duration = Duration::from_millis(10);
/// How long a task's lease lasts: longer than a round takes.
const LEASE_MS: i64 = 60_000;
/// How often a node looks for work.
pub const ROUND: Duration = Duration::from_secs(30);

/// What to purge now, by task name.
pub fn tasks(config: &Config, now: Millis) -> Vec<Spent> {
    let hour = 3_600_000;
    let idle = i64::try_from(config.flow_sessions.idle_timeout_seconds.saturating_mul(1000)).unwrap_or(i64::MAX);
    let rl = &config.rate_limits;
    let longest = i64::try_from(rl.per_ip_window_seconds.max(rl.per_account_window_seconds).saturating_mul(1000))
        .unwrap_or(i64::MAX);
    let mut tasks = vec![
        // Ended sessions are kept an hour longer, so late calls still get a precise answer.
        Spent::FlowSessions { expired_before: now - hour, idle_before: now.saturating_sub(idle) - hour },
        Spent::RateLimitWindows { before: now.saturating_sub(longest) },
        Spent::LinkTokens { before: now - hour },
        // No check takes 10 minutes: a slot held that long belongs to a failure that could not be written.
        Spent::Reservations { before: now - 600_000 },
        Spent::Messages { before: now - 24 * hour },
        Spent::Approvals { before: now - hour },
        Spent::Activations { before: now - hour },
        Spent::AuthSessions { before: now - hour },
        Spent::CaptchaSolutions { before: now },
        Spent::AppTokens { before: now - hour },
    ];
    if config.audit.retention_days > 0 {
        tasks.push(Spent::AuditEvents { before: now - i64::from(config.audit.retention_days) * 24 * hour });
    }
    tasks
}

/// One round on one node: every task whose lease this node gets, batch by batch. Returns the rows removed per
/// task this node ran.
pub async fn round(store: &dyn Store, config: &Config, node: &str, now: Millis) -> Vec<(&'static str, u64)> {
    let mut done = Vec::new();
    for task in tasks(config, now) {
        match run_task(store, node, task, now).await {
            Ok(Some(n)) => done.push((task.name(), n)),
            Ok(None) => {}
            Err(e) => tracing::warn!(task = task.name(), error = %e, "housekeeping: task failed"),
        }
    }
    done
}

/// `None` when another node holds the task.
async fn run_task(store: &dyn Store, node: &str, task: Spent, now: Millis) -> Result<Option<u64>, StoreError> {
    if !store.take_lease(task.name(), node, now, now + LEASE_MS).await? {
        return Ok(None);
    }
    let mut removed = 0;
    for _ in 0..MAX_BATCHES {
        let started = std::time::Instant::now();
        let n = store.purge(task, BATCH).await?;
        removed += n;
        if n < BATCH.unsigned_abs() {
            break;
        }
        // Let other work through between batches: the purge takes at most half of the database's time.
        tokio::time::sleep(started.elapsed().max(PAUSE)).await;
    }
    Ok(Some(removed))
}

/// Whether a task of the round stopped at its batch limit (so there is more to purge).
fn behind(done: &[(&'static str, u64)]) -> bool {
    let full = u64::from(MAX_BATCHES) * BATCH.unsigned_abs();
    done.iter().any(|(_, n)| *n >= full)
}

/// Runs rounds until `shutdown`.
pub async fn run(state: AppState, node: String, mut shutdown: watch::Receiver<bool>) {
    loop {
        let now = state.clock.now_ms();
        let started = std::time::Instant::now();
        let done = round(state.store.as_ref(), &state.config, &node, now).await;
        for (task, n) in &done {
            if *n > 0 {
                tracing::info!(task, removed = n, round_ms = started.elapsed().as_millis(), "housekeeping");
            }
        }
        // A backlog (millions of rows after an outage, say) is worked off round after round, batch by batch,
        // instead of 20,000 rows per ROUND.
        let wait = if behind(&done) { PAUSE } else { ROUND };
        tokio::select! {
            () = tokio::time::sleep(wait) => {}
            _ = shutdown.changed() => {}
        }
        if *shutdown.borrow() {
            // Another node takes the tasks at its next round rather than a lease's length from now.
            if let Err(e) = state.store.release_leases(&node).await {
                tracing::warn!(error = %e, "housekeeping: leases not released; other nodes take them when they run out");
            }
            return;
        }
    }
}
