//! Messages a call queues, claimed for this node in the transaction that queues them and handed to its delivery
//! worker in memory once that transaction committed.
//!
//! Without it every queued message cost a claim of its own: under a burst of reset requests the worker woke for
//! each one and claimed it in a transaction of its own (on PostgreSQL four statements, on SQLite another turn of
//! the one writer), as many claims as messages. Now the message's row is written claimed (`claimed_until`, its
//! first attempt), other nodes' claims skip it like any claimed row, and a node that stops before delivering it
//! leaves it to whichever node claims it once the claim ran out — as with a claim. Claims from the store remain
//! for what was not handed over: retries, messages of calls that found the hand-off full, and other paths.

use std::borrow::Cow;
use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, MutexGuard, PoisonError};

use gatehouse_core::clock::Millis;
use gatehouse_core::ports::{ClaimedMessage, Effect, StoreError};
use tokio::sync::Notify;

use crate::state::AppState;

/// How long a claimed message is reserved for this node's worker before another node may try it.
pub(crate) const CLAIM_MS: i64 = 60_000;

/// The messages handed over to this node's worker, bounded so that none waits here anywhere near its claim's end.
pub struct HandOff {
    queue: Mutex<Queue>,
    /// Wakes the worker: a message was handed over, or queued for anyone to claim.
    ready: Notify,
    /// A call queued a message without claiming it (no room here, or a path that does not hand over): the worker's
    /// next round claims from the store.
    unclaimed: AtomicBool,
}

struct Queue {
    /// Committed, waiting for a delivery slot.
    ready: VecDeque<ClaimedMessage>,
    /// Claimed by calls whose transaction has not ended yet.
    reserved: usize,
    /// How many may be ready or reserved at once; 0 while no worker runs.
    capacity: usize,
}

/// The messages one call claimed for this node, until its transaction ended ([`HandOff::settle`]).
#[must_use]
pub struct Reservation {
    messages: Vec<ClaimedMessage>,
    /// Some of the call's messages found no room: once they are committed, the worker claims them from the store.
    left_unclaimed: bool,
}

impl Default for HandOff {
    fn default() -> Self {
        Self {
            queue: Mutex::new(Queue { ready: VecDeque::new(), reserved: 0, capacity: 0 }),
            ready: Notify::new(),
            unclaimed: AtomicBool::new(false),
        }
    }
}

impl HandOff {
    fn queue(&self) -> MutexGuard<'_, Queue> {
        // The queue's state is valid after any panic of a holder: nothing spans two statements.
        self.queue.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The worker takes messages from now on, up to `capacity` waiting at once.
    pub fn open(&self, capacity: usize) {
        self.queue().capacity = capacity;
    }

    /// The worker stops: nothing is claimed for it any more; what was handed over and not delivered is returned.
    pub fn close(&self) -> Vec<ClaimedMessage> {
        let mut queue = self.queue();
        queue.capacity = 0;
        queue.ready.drain(..).collect()
    }

    /// Before a call's transaction: claims the messages it queues for this node while there is room. The effects
    /// to write are returned, the claimed messages' `claimed_until` set; unchanged when nothing was claimed.
    pub fn claim<'a>(&self, effects: &'a [Effect], now: Millis) -> (Cow<'a, [Effect]>, Reservation) {
        let queued = effects.iter().filter(|e| matches!(e, Effect::Enqueue(_))).count();
        let mut reservation = Reservation { messages: Vec::new(), left_unclaimed: false };
        if queued == 0 {
            return (Cow::Borrowed(effects), reservation);
        }
        let room = {
            let mut queue = self.queue();
            let free = queue.capacity.saturating_sub(queue.ready.len() + queue.reserved);
            let room = free.min(queued);
            queue.reserved += room;
            room
        };
        reservation.left_unclaimed = room < queued;
        if room == 0 {
            return (Cow::Borrowed(effects), reservation);
        }
        let until = now.saturating_add(CLAIM_MS);
        let mut effects = effects.to_vec();
        for effect in &mut effects {
            if reservation.messages.len() == room {
                break;
            }
            if let Effect::Enqueue(message) = effect {
                message.claimed_until = Some(until);
                reservation.messages.push(ClaimedMessage { message: message.clone(), attempts: 1 });
            }
        }
        (Cow::Owned(effects), reservation)
    }

    /// After the transaction: committed messages go to the worker, and it is woken (to claim from the store what
    /// found no room: not before the commit, or its claim could run first and find nothing). Returns what the worker
    /// can no longer take (it stopped meanwhile), for the caller to give back to the store.
    pub fn settle(&self, reservation: Reservation, committed: bool) -> Vec<ClaimedMessage> {
        if committed && reservation.left_unclaimed {
            self.queued_unclaimed();
        }
        let count = reservation.messages.len();
        let mut queue = self.queue();
        queue.reserved = queue.reserved.saturating_sub(count);
        if !committed || count == 0 {
            return Vec::new();
        }
        if queue.capacity == 0 {
            return reservation.messages;
        }
        queue.ready.extend(reservation.messages);
        drop(queue);
        self.ready.notify_one();
        Vec::new()
    }

    /// A message was queued without a claim: the worker claims from the store.
    pub fn queued_unclaimed(&self) {
        self.unclaimed.store(true, Ordering::Relaxed);
        self.ready.notify_one();
    }

    /// The worker: whether nothing handed over waits.
    pub fn is_empty(&self) -> bool {
        self.queue().ready.is_empty()
    }

    /// The worker: the next message handed over.
    pub fn pop(&self) -> Option<ClaimedMessage> {
        self.queue().ready.pop_front()
    }

    /// The worker: the next message handed over if it was queued no later than `created_at`.
    pub fn pop_queued_by(&self, created_at: Millis) -> Option<ClaimedMessage> {
        let mut queue = self.queue();
        queue.ready.pop_front_if(|c| c.message.created_at <= created_at)
    }

    /// The worker: whether a message was queued without a claim since it last asked.
    pub fn take_unclaimed(&self) -> bool {
        self.unclaimed.swap(false, Ordering::Relaxed)
    }

    /// The worker: waits until a message is handed over or queued.
    pub async fn notified(&self) {
        self.ready.notified().await;
    }
}

/// Runs `write`, the store call that commits `effects`, with this node's claims on the messages they queue, then
/// hands those to the worker if it answered `true` (committed). On an error the transaction may have committed:
/// its messages then wait out their claim and are claimed like any other.
pub(crate) async fn write_queuing(
    state: &AppState,
    effects: &[Effect],
    write: impl AsyncFnOnce(&[Effect]) -> Result<bool, StoreError>,
) -> Result<bool, StoreError> {
    let (effects, reservation) = state.outbox.claim(effects, state.clock.now_ms());
    let written = write(&effects).await;
    let left = state.outbox.settle(reservation, matches!(written, Ok(true)));
    if !left.is_empty() {
        let ids: Vec<String> = left.into_iter().map(|c| c.message.id).collect();
        if let Err(e) = state.store.release_claims(&ids).await {
            tracing::warn!(error = %e, count = ids.len(), "outbox: cannot give back claimed messages (they wait out their claim)");
        }
    }
    written
}

#[cfg(test)]
mod tests {
    use super::*;
    use gatehouse_core::ports::{Channel, OutboxMessage};

    fn queued(effect: &Effect) -> Option<&OutboxMessage> {
        match effect {
            Effect::Enqueue(m) => Some(m),
            _ => None,
        }
    }

    fn message(id: &str) -> Effect {
        Effect::Enqueue(OutboxMessage {
            id: id.into(),
            channel: Channel::Email,
            sealed: "sealed".into(),
            created_at: 1_000,
            claimed_until: None,
        })
    }

    fn claimed(effects: &[Effect]) -> Vec<(String, Option<Millis>)> {
        effects.iter().filter_map(queued).map(|m| (m.id.clone(), m.claimed_until)).collect()
    }

    #[test]
    fn nothing_is_claimed_while_no_worker_runs() {
        let hand_off = HandOff::default();
        let effects = [message("a")];
        let (written, reservation) = hand_off.claim(&effects, 5_000);
        assert!(matches!(written, Cow::Borrowed(_)));
        assert_eq!(claimed(&written), [("a".to_owned(), None)]);
        assert!(hand_off.settle(reservation, true).is_empty());
        assert!(hand_off.pop().is_none());
        assert!(hand_off.take_unclaimed(), "the worker's next round must claim it from the store");
    }

    #[test]
    fn committed_messages_reach_the_worker_claimed_until_the_claim_ends() {
        let hand_off = HandOff::default();
        hand_off.open(4);
        let effects = [message("a"), message("b")];
        let (written, reservation) = hand_off.claim(&effects, 5_000);
        let until = Some(5_000 + CLAIM_MS);
        assert_eq!(claimed(&written), [("a".to_owned(), until), ("b".to_owned(), until)]);
        assert!(hand_off.pop().is_none(), "nothing before the commit");
        assert!(hand_off.settle(reservation, true).is_empty());
        let first = hand_off.pop().unwrap();
        assert_eq!((first.message.id.as_str(), first.message.claimed_until, first.attempts), ("a", until, 1));
        assert_eq!(hand_off.pop().unwrap().message.id, "b");
        assert!(!hand_off.take_unclaimed());
    }

    #[test]
    fn room_is_bounded_and_given_back_when_the_transaction_fails() {
        let hand_off = HandOff::default();
        hand_off.open(2);
        let (_, held) = hand_off.claim(&[message("a")], 0);
        let effects = [message("b"), message("c")];
        let (written, second) = hand_off.claim(&effects, 0);
        assert_eq!(claimed(&written), [("b".to_owned(), Some(CLAIM_MS)), ("c".to_owned(), None)]);
        assert!(!hand_off.take_unclaimed(), "no claim before c is committed");
        // The first call's transaction failed: its room is free again and nothing reaches the worker.
        assert!(hand_off.settle(held, false).is_empty());
        let effects = [message("d")];
        let (written, third) = hand_off.claim(&effects, 0);
        assert_eq!(claimed(&written), [("d".to_owned(), Some(CLAIM_MS))]);
        assert!(hand_off.settle(second, true).is_empty());
        assert!(hand_off.take_unclaimed(), "c, committed, is left to a claim from the store");
        assert!(hand_off.settle(third, true).is_empty());
        let ids: Vec<String> = std::iter::from_fn(|| hand_off.pop()).map(|c| c.message.id).collect();
        assert_eq!(ids, ["b", "d"]);
    }

    #[test]
    fn a_worker_that_stopped_leaves_late_messages_to_be_given_back() {
        let hand_off = HandOff::default();
        hand_off.open(4);
        let (_, early) = hand_off.claim(&[message("a")], 0);
        let (_, late) = hand_off.claim(&[message("b")], 0);
        assert!(hand_off.settle(early, true).is_empty());
        let undelivered: Vec<String> = hand_off.close().into_iter().map(|c| c.message.id).collect();
        assert_eq!(undelivered, ["a"]);
        let left: Vec<String> = hand_off.settle(late, true).into_iter().map(|c| c.message.id).collect();
        assert_eq!(left, ["b"]);
    }
}
