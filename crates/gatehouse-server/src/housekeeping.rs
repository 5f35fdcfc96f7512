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

/// Rows one statement removes: small enough that no table is locked for long.
pub const BATCH: i64 = 500;
/// Batches one task runs per round at most; the rest waits for the next round.
const MAX_BATCHES: u32 = 40;
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
        let n = store.purge(task, BATCH).await?;
        removed += n;
        if n < BATCH.unsigned_abs() {
            break;
        }
        // Let other work through between batches.
        tokio::task::yield_now().await;
    }
    Ok(Some(removed))
}

/// Runs rounds until `shutdown`.
pub async fn run(state: AppState, node: String, mut shutdown: watch::Receiver<bool>) {
    loop {
        let now = state.clock.now_ms();
        for (task, n) in round(state.store.as_ref(), &state.config, &node, now).await {
            if n > 0 {
                tracing::info!(task, removed = n, "housekeeping");
            }
        }
        tokio::select! {
            () = tokio::time::sleep(ROUND) => {}
            _ = shutdown.changed() => {}
        }
        if *shutdown.borrow() {
            return;
        }
    }
}
