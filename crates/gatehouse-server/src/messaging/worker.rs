use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use gatehouse_core::clock::Millis;
use gatehouse_core::outbox::{self, Envelope};
use gatehouse_core::ports::{ClaimedMessage, OutboxMessage};
use tokio::sync::{Semaphore, mpsc, watch};
use tokio::task::JoinSet;

use super::hand_off::HandOff;
use crate::state::AppState;

#[derive(Debug, thiserror::Error)]
pub enum DeliveryError {
    /// Worth retrying (connection refused, timeout, 4xx from the server).
    #[error("{0}")]
    Transient(String),
    /// Will never work (bad address, 5xx rejection): give up at once.
    #[error("{0}")]
    Permanent(String),
}

#[async_trait]
pub trait Delivery: Send + Sync {
    async fn deliver(&self, message: &OutboxMessage, envelope: &Envelope) -> Result<(), DeliveryError>;
    fn describe(&self) -> String;
    /// Whether the transport can be reached now (`gatehouse doctor`), without sending anything.
    async fn check(&self) -> Result<(), String> {
        Ok(())
    }
    /// Closes connections kept idle for longer than the transport keeps them. The worker calls it whenever it
    /// has nothing to deliver, so they do not wait for the next message to be closed.
    fn close_idle(&self) {}
}

/// Deliveries recorded in one statement at most.
const RECORD_BATCH: usize = 256;

/// Delivers messages until `shutdown` turns true, with up to `messaging.concurrency` in flight: a slot that frees
/// up is filled at once (a slow message holds its slot, never the others). Messages this node's calls queued come
/// from memory, claimed in the transaction that queued them ([`super::hand_off`]); the store is asked at the
/// start, once per poll interval (retries that came due, messages other nodes left) and when a call queued a
/// message unclaimed. Such claims take four rounds of slots at a time, the next claim running while the last round
/// is handed out (`FOR UPDATE SKIP LOCKED` on PostgreSQL, so nodes never wait for each other's claims). With
/// nothing to deliver it sleeps until a call queues a message or the poll interval passes. Successes are written
/// by one recorder, many per statement; on shutdown, claimed messages not handed out are given back.
///
/// The hand-off opens when this is called, not when the returned future first runs: calls served from the moment
/// the server starts hand their messages over.
pub fn run_worker(
    state: AppState,
    delivery: Arc<dyn Delivery>,
    shutdown: watch::Receiver<bool>,
) -> impl Future<Output = ()> + Send {
    let concurrency = state.config.messaging.concurrency.max(1);
    // Claims take four rounds of slots, and as many handed-over messages may wait: each waits a few deliveries
    // at most, far less than its claim lasts.
    let batch = concurrency.saturating_mul(4);
    state.outbox.open(batch);
    deliver(state, delivery, shutdown, concurrency, batch)
}

async fn deliver(
    state: AppState,
    delivery: Arc<dyn Delivery>,
    mut shutdown: watch::Receiver<bool>,
    concurrency: usize,
    batch: usize,
) {
    let poll = Duration::from_millis(state.config.messaging.poll_interval_ms);
    let slots = Arc::new(Semaphore::new(concurrency));
    let (delivered, to_record) = mpsc::unbounded_channel();
    let recorder = tokio::spawn(record_deliveries(state.clone(), to_record));
    let mut in_flight = JoinSet::new();
    // Claimed from the store, waiting for a slot. Claims take several slots' worth at once: a claim is a write, and
    // behind a busy database (SQLite's one writer) each one waits its turn — one claim per freed slot would make
    // that wait the pace of delivery.
    let mut claimed: VecDeque<ClaimedMessage> = VecDeque::new();
    // The next claim runs while the last one's messages are still being handed out, once fewer than a round of
    // slots is left: with a queue of thousands, waiting for each claim with the slots idle (10–50 ms behind
    // PostgreSQL's busy writers) set the pace of delivery.
    let mut claiming: Option<tokio::task::JoinHandle<Vec<ClaimedMessage>>> = None;
    let mut last_claim_full = false;
    let mut claim_due = true;
    let mut next_poll = tokio::time::Instant::now() + poll;
    while !*shutdown.borrow() {
        while in_flight.try_join_next().is_some() {}
        // A claim still running is waited for only when nothing else is left to hand out: behind SQLite's busy
        // writer it can take tens of ms, while handed-over messages are ready now.
        if let Some(claim) = claiming.take_if(|c| c.is_finished() || (claimed.is_empty() && state.outbox.is_empty())) {
            let rows = claim.await.unwrap_or_default();
            last_claim_full = rows.len() >= batch;
            claimed.extend(rows);
        }
        if tokio::time::Instant::now() >= next_poll {
            claim_due = true;
            next_poll = tokio::time::Instant::now() + poll;
        }
        claim_due |= state.outbox.take_unclaimed();
        let wants_claim = claiming.is_none() && (claim_due || last_claim_full);
        let Some(next) = oldest(&mut claimed, &state.outbox) else {
            if wants_claim {
                claim_due = false;
                claiming = Some(tokio::spawn(claim(state.clone(), batch)));
                continue;
            }
            delivery.close_idle();
            tokio::select! {
                () = state.outbox.notified() => {}
                () = tokio::time::sleep_until(next_poll) => {}
                _ = shutdown.changed() => {}
            }
            continue;
        };
        if wants_claim && claimed.len() < concurrency {
            claim_due = false;
            claiming = Some(tokio::spawn(claim(state.clone(), batch)));
        }
        let slot = tokio::select! {
            slot = slots.clone().acquire_owned() => slot,
            _ = shutdown.changed() => {
                claimed.push_front(next);
                continue;
            }
        };
        let Ok(slot) = slot else { break };
        let (state, delivery, delivered) = (state.clone(), delivery.clone(), delivered.clone());
        in_flight.spawn(async move {
            if let Some(id) = deliver_one(&state, delivery.as_ref(), next).await {
                let _ = delivered.send(id);
            }
            drop(slot);
        });
    }
    // Messages in flight are finished (each is bounded by its transport's timeout) and recorded before the
    // worker stops; claimed messages not yet handed out are given back, for the next start or another node.
    if let Some(claim) = claiming.take() {
        claimed.extend(claim.await.unwrap_or_default());
    }
    claimed.extend(state.outbox.close());
    let unsent: Vec<String> = claimed.drain(..).map(|c| c.message.id).collect();
    if let Err(e) = state.store.release_claims(&unsent).await {
        tracing::warn!(error = %e, count = unsent.len(), "outbox: cannot give back claimed messages (they wait out their claim)");
    }
    while in_flight.join_next().await.is_some() {}
    drop(delivered);
    let _ = recorder.await;
}

/// The older of the next message claimed from the store and the next one handed over. Under a backlog the claims
/// never run dry (the next one runs while the last is handed out), so taking them first left the handed-over
/// messages waiting for the whole backlog: a few dozen mails seconds late while the rest took milliseconds.
fn oldest(claimed: &mut VecDeque<ClaimedMessage>, hand_off: &HandOff) -> Option<ClaimedMessage> {
    match claimed.front() {
        Some(c) => hand_off.pop_queued_by(c.message.created_at).or_else(|| claimed.pop_front()),
        None => hand_off.pop(),
    }
}

/// Claims up to `batch` due messages for this worker; a failure is logged and claims nothing.
async fn claim(state: AppState, batch: usize) -> Vec<ClaimedMessage> {
    let now = state.clock.now_ms();
    let limit = i64::try_from(batch).unwrap_or(i64::MAX);
    match state.store.claim_outbox(now, now + super::hand_off::CLAIM_MS, limit).await {
        Ok(rows) => rows,
        Err(e) => {
            tracing::warn!(error = %e, "outbox: cannot claim messages");
            Vec::new()
        }
    }
}

/// Records delivered messages: whatever arrived while the previous statement ran goes into the next one.
async fn record_deliveries(state: AppState, mut delivered: mpsc::UnboundedReceiver<String>) {
    let mut ids = Vec::new();
    while let Some(id) = delivered.recv().await {
        ids.push(id);
        while ids.len() < RECORD_BATCH {
            match delivered.try_recv() {
                Ok(id) => ids.push(id),
                Err(_) => break,
            }
        }
        if let Err(e) = state.store.mark_delivered(&ids, state.clock.now_ms()).await {
            tracing::warn!(error = %e, count = ids.len(), "outbox: cannot record deliveries (they may be sent again)");
        }
        ids.clear();
    }
}

/// Delivers one claimed message; returns its id when it was delivered (recorded with the batch), and records
/// a retry or a give-up itself.
async fn deliver_one(state: &AppState, delivery: &dyn Delivery, c: ClaimedMessage) -> Option<String> {
    let result = match outbox::open(&state.key, &c.message) {
        Ok(envelope) => delivery.deliver(&c.message, &envelope).await,
        Err(e) => Err(DeliveryError::Permanent(format!("cannot open message: {e}"))),
    };
    let now = state.clock.now_ms();
    let outcome = match &result {
        Ok(()) => "sent",
        Err(DeliveryError::Permanent(_)) => "abandoned",
        Err(DeliveryError::Transient(_)) => "failed",
    };
    metrics::counter!("gatehouse_messages_total", "channel" => c.message.channel.as_str(), "result" => outcome)
        .increment(1);
    let write = match result {
        Ok(()) => return Some(c.message.id),
        Err(DeliveryError::Permanent(why)) => {
            tracing::error!(id = %c.message.id, error = %why, "outbox: message abandoned");
            state.store.mark_abandoned(&c.message.id, &why, now).await
        }
        Err(DeliveryError::Transient(why)) => {
            let max_age = i64::try_from(state.config.messaging.max_age_seconds * 1000).unwrap_or(i64::MAX);
            if now - c.message.created_at > max_age {
                tracing::error!(id = %c.message.id, attempts = c.attempts, error = %why, "outbox: message too old, abandoned");
                state.store.mark_abandoned(&c.message.id, &why, now).await
            } else {
                let next = now + backoff_ms(&state.config.messaging, c.attempts);
                tracing::warn!(id = %c.message.id, attempts = c.attempts, error = %why, retry_in_ms = next - now, "outbox: delivery failed, will retry");
                state.store.mark_retry(&c.message.id, &why, next).await
            }
        }
    };
    if let Err(e) = write {
        tracing::warn!(error = %e, id = %c.message.id, "outbox: cannot record delivery result");
    }
    None
}

/// Exponential backoff: initial × 2^(attempts−1), capped.
fn backoff_ms(config: &gatehouse_core::config::MessagingConfig, attempts: i64) -> Millis {
    let exponent = u32::try_from(attempts.saturating_sub(1).clamp(0, 30)).unwrap_or(30);
    let delay = config.retry_initial_delay_ms.saturating_mul(1u64 << exponent).min(config.retry_max_delay_ms);
    i64::try_from(delay).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_and_is_capped() {
        let c = gatehouse_core::config::MessagingConfig {
            retry_initial_delay_ms: 100,
            retry_max_delay_ms: 1000,
            ..Default::default()
        };
        assert_eq!([1, 2, 3, 4, 5, 60].map(|a| backoff_ms(&c, a)), [100, 200, 400, 800, 1000, 1000]);
    }

    fn message(id: &str, created_at: Millis) -> OutboxMessage {
        OutboxMessage {
            id: id.into(),
            channel: gatehouse_core::ports::Channel::Email,
            sealed: "sealed".into(),
            created_at,
            claimed_until: None,
        }
    }

    #[test]
    fn messages_claimed_and_handed_over_go_out_oldest_first() {
        let hand_off = HandOff::default();
        hand_off.open(8);
        for (id, at) in [("h1", 20), ("h2", 40), ("h3", 60)] {
            let (_, reservation) = hand_off.claim(&[gatehouse_core::ports::Effect::Enqueue(message(id, at))], at);
            assert!(hand_off.settle(reservation, true).is_empty());
        }
        let mut claimed: VecDeque<ClaimedMessage> = [("c1", 10), ("c2", 30), ("c3", 40), ("c4", 70)]
            .into_iter()
            .map(|(id, at)| ClaimedMessage { message: message(id, at), attempts: 1 })
            .collect();
        let order: Vec<String> = std::iter::from_fn(|| oldest(&mut claimed, &hand_off)).map(|c| c.message.id).collect();
        // A tie goes to the handed-over message; either way both sources drain.
        assert_eq!(order, ["c1", "h1", "c2", "h2", "c3", "h3", "c4"]);
    }
}
