//! One conformance suite for the `Store` trait, run against SQLite and PostgreSQL.

use std::sync::Arc;

use futures::future::join_all;
use gatehouse_core::audit::{AuditEvent, AuditQuery};
use gatehouse_core::config::{Counter, OverLimit, ThrottleConfig};
use gatehouse_core::flow::session::{FlowKind, NewFlowSession, SessionStatus};
use gatehouse_core::ports::{
    Acquired, Channel, Effect, Failure, FlowSessionUpdate, NewContinuationToken, OutboxMessage, Spent, Store,
    StoreError,
};
use gatehouse_core::user::NewUser;

use crate::harness::{Backend, TestEnv};
use crate::on_both_backends;

on_both_backends!(
    users_and_login_names,
    attempt_counters_and_locks,
    throttled_counters_block_for_a_growing_time,
    flow_sessions,
    flow_starts_race_in_groups,
    outbox_and_audit,
    approval_events_reach_waiters,
    continuation_tokens_work_once,
    rate_limit_windows,
    secret_answers_are_replaced_whole,
    totp_states_of_many_users_at_once,
    admin_tokens_note_their_use_to_the_minute,
    claims_take_at_most_their_limit_from_a_long_queue,
    messages_claimed_as_they_are_queued_wait_out_their_claim,
    temporary_locks_and_unlock_counts_change_in_the_order_given
);

fn locking(method: &str, max: u32) -> Counter {
    let reason = format!("LockReason.TooManyAuthAtts.{method}");
    Counter { method_id: method.into(), max, over_limit: OverLimit::Lock { reason } }
}

/// A device as an activation registers it (the store fills in the user).
fn device(id: &str) -> gatehouse_core::ports::Device {
    gatehouse_core::ports::Device {
        id: id.into(),
        user_id: String::new(),
        public_key: "pk".into(),
        sealed_offline: "s".into(),
        display_name: "phone".into(),
        created_at: 1,
        last_seen_at: None,
    }
}

fn failure(count: i64, locked: bool, blocked_until: Option<i64>) -> Failure {
    Failure { count, locked, blocked_until }
}

fn audit(id: &str, at: i64) -> AuditEvent {
    AuditEvent {
        id: id.into(),
        at,
        event: "test.event".into(),
        actor: "admin:test".into(),
        user_id: None,
        username: None,
        flow_id: None,
        session_id: None,
        ip: Some("127.0.0.1".into()),
        outcome: "ok".into(),
        details: serde_json::json!({ "n": at }),
    }
}

/// A password-reset flow at its first step, as its first call stores it.
fn started_flow(id: &str, token_hash: &str) -> NewFlowSession {
    NewFlowSession {
        id: id.into(),
        token_hash: token_hash.into(),
        kind: FlowKind::PublicSelfService,
        flow_id: "password-reset".into(),
        state: serde_json::json!({ "step": 0 }),
        status: SessionStatus::Active,
        created_at: 100,
        last_seen_at: 100,
        expires_at: 10_000,
    }
}

fn new_user(id: &str, username: &str, aliases: &[&str]) -> NewUser {
    NewUser {
        id: id.into(),
        username: username.into(),
        aliases: aliases.iter().map(|a| (*a).to_owned()).collect(),
        context: [("email".to_owned(), format!("{username}@example.com"))].into(),
        roles: vec!["staff".into()],
        password_hash: None,
        created_at: 1000,
        ..NewUser::default()
    }
}

async fn users_and_login_names(backend: Backend) {
    let env = TestEnv::new(backend).await;
    let store = env.store().await;
    let a = store.create_user(&new_user("u1", "alice", &["Alice@Example.com"]), &audit("a1", 1)).await.unwrap();
    assert_eq!(a.aliases, vec!["alice@example.com"]);
    assert_eq!(a.roles, vec!["staff"]);
    assert_eq!(store.find_user_by_login("ALICE@example.com ").await.unwrap().unwrap().id, "u1");
    assert_eq!(store.find_user_by_login("alice").await.unwrap().unwrap().id, "u1");
    assert!(store.find_user_by_login("bob").await.unwrap().is_none());

    // One namespace for usernames and aliases, in both directions.
    let dup = store.create_user(&new_user("u2", "alice", &[]), &audit("a2", 2)).await;
    assert!(matches!(dup, Err(StoreError::UsernameTaken(_))), "{dup:?}");
    let dup = store.create_user(&new_user("u3", "alice@example.com", &[]), &audit("a3", 3)).await;
    assert!(matches!(dup, Err(StoreError::UsernameTaken(_))), "{dup:?}");
    let dup = store.create_user(&new_user("u4", "carol", &["alice"]), &audit("a4", 4)).await;
    assert!(matches!(dup, Err(StoreError::AliasTaken(_))), "{dup:?}");
    assert!(store.get_user("u4").await.unwrap().is_none(), "a failed creation leaves nothing behind");

    // Parallel creations of the same alias: exactly one wins.
    let results = join_all((0..20).map(|i| {
        let store = store.clone();
        async move {
            store
                .create_user(
                    &new_user(&format!("p{i}"), &format!("user{i}"), &["shared@example.com"]),
                    &audit(&format!("p{i}"), 10 + i),
                )
                .await
        }
    }))
    .await;
    assert_eq!(results.iter().filter(|r| r.is_ok()).count(), 1);
    assert!(
        results
            .iter()
            .all(|r| r.is_ok() || matches!(r, Err(StoreError::AliasTaken(_)) | Err(StoreError::UsernameTaken(_))))
    );

    let users = store.list_users().await.unwrap();
    assert_eq!(users.len(), 2);
    store.apply(&[Effect::DeleteUser { user_id: "u1".into() }]).await.unwrap();
    assert!(store.find_user_by_login("alice@example.com").await.unwrap().is_none());
    // Deleting frees the names.
    store.create_user(&new_user("u5", "alice", &["alice@example.com"]), &audit("a5", 5)).await.unwrap();
    env.cleanup().await;
}

async fn throttled_counters_block_for_a_growing_time(backend: Backend) {
    let env = TestEnv::new(backend).await;
    let store = env.store().await;
    store.create_user(&new_user("u1", "dana", &[]), &audit("a1", 1)).await.unwrap();
    let throttle = ThrottleConfig { base_ms: 1000, factor: 2.0, additional_ms: 0, max_ms: 60_000 };
    let counter = Counter { method_id: "OTP:PUBLIC".into(), max: 2, over_limit: OverLimit::Throttle(throttle) };
    for (n, now) in [(1, 10), (2, 20)] {
        assert!(store.reserve_attempt("u1", "OTP:PUBLIC", 2, now).await.unwrap().is_some());
        assert_eq!(store.record_failure("u1", &counter, now).await.unwrap(), failure(n, false, None));
    }
    // The third failure is over the limit: blocked for base_ms, and nobody is locked.
    assert!(store.reserve_attempt("u1", "OTP:PUBLIC", 2, 30).await.unwrap().is_some());
    assert_eq!(store.record_failure("u1", &counter, 30).await.unwrap(), failure(3, false, Some(1030)));
    assert_eq!(store.reserve_attempt("u1", "OTP:PUBLIC", 2, 1029).await.unwrap(), None, "blocked");
    // Once the block is over, one check at a time: parallel checks get one slot.
    let got = join_all((0..20).map(|_| store.reserve_attempt("u1", "OTP:PUBLIC", 2, 1030))).await;
    assert_eq!(got.into_iter().filter(|r| matches!(r, Ok(Some(_)))).count(), 1);
    // Its failure doubles the block.
    assert_eq!(store.record_failure("u1", &counter, 1100).await.unwrap(), failure(4, false, Some(3100)));
    assert_eq!(store.reserve_attempt("u1", "OTP:PUBLIC", 2, 3099).await.unwrap(), None);
    // A right answer gives its slot back; the failures stay until a completed flow resets the counter.
    assert!(store.reserve_attempt("u1", "OTP:PUBLIC", 2, 3100).await.unwrap().is_some());
    store.apply(&[Effect::ReleaseAttempt { user_id: "u1".into(), method_id: "OTP:PUBLIC".into() }]).await.unwrap();
    let user = store.get_user("u1").await.unwrap().unwrap();
    assert!(!user.locked);
    assert_eq!(user.failed_attempts.get("OTP:PUBLIC"), Some(&4));
    store
        .apply(&[Effect::ResetCounters { user_id: "u1".into(), method_ids: vec!["OTP:PUBLIC".into()] }])
        .await
        .unwrap();
    assert_eq!(store.reserve_attempt("u1", "OTP:PUBLIC", 2, 3101).await.unwrap(), Some(1));
    store.apply(&[Effect::ReleaseAttempt { user_id: "u1".into(), method_id: "OTP:PUBLIC".into() }]).await.unwrap();
    // A slot whose failure could not be written stays taken (no free guess), until housekeeping reclaims it.
    let held = locking("HELD", 0);
    assert!(store.reserve_attempt("u1", "HELD", 0, 5000).await.unwrap().is_some());
    assert_eq!(store.reserve_attempt("u1", "HELD", 0, 5001).await.unwrap(), None, "the slot is taken");
    assert_eq!(store.purge(Spent::Reservations { before: 5000 }, 500).await.unwrap(), 0, "not stale yet");
    assert_eq!(store.purge(Spent::Reservations { before: 5001 }, 500).await.unwrap(), 1);
    assert!(store.reserve_attempt("u1", "HELD", 0, 5002).await.unwrap().is_some(), "reclaimed");
    assert_eq!(store.record_failure("u1", &held, 5002).await.unwrap(), failure(1, true, None));
    store.apply(&[Effect::Unlock { user_id: "u1".into(), at: 5003 }]).await.unwrap();
    // A counter that locks is never unblocked by time.
    let locks = locking("OTP", 0);
    assert!(store.reserve_attempt("u1", "OTP", 0, 0).await.unwrap().is_some());
    assert!(store.record_failure("u1", &locks, 5).await.unwrap().locked);
    assert_eq!(store.reserve_attempt("u1", "OTP", 0, i64::MAX).await.unwrap(), None);
    env.cleanup().await;
}

async fn attempt_counters_and_locks(backend: Backend) {
    let env = TestEnv::new(backend).await;
    let store = env.store().await;
    store.create_user(&new_user("u1", "dana", &[]), &audit("a1", 1)).await.unwrap();
    let got: Vec<Option<i64>> = join_all((0..5).map(|_| store.reserve_attempt("u1", "OTP", 2, 0)))
        .await
        .into_iter()
        .map(Result::unwrap)
        .collect();
    let mut granted: Vec<i64> = got.iter().flatten().copied().collect();
    granted.sort_unstable();
    assert_eq!(granted, vec![1, 2, 3], "max 2 lets the third (the one that exceeds) through, then nothing");
    store.apply(&[Effect::ReleaseAttempt { user_id: "u1".into(), method_id: "OTP".into() }]).await.unwrap();
    // Reservations are checks in flight, not failures: nothing shows, nothing locks.
    let failures = |u: gatehouse_core::user::User| u.failed_attempts.get("OTP").copied();
    assert_eq!(failures(store.get_user("u1").await.unwrap().unwrap()), None);
    // Two of the checks turn out wrong: two failures, within the limit.
    let reason = "LockReason.TooManyAuthAtts.OTP";
    let otp = locking("OTP", 2);
    assert_eq!(store.record_failure("u1", &otp, 5).await.unwrap(), failure(1, false, None));
    assert_eq!(store.record_failure("u1", &otp, 5).await.unwrap(), failure(2, false, None));
    assert_eq!(failures(store.get_user("u1").await.unwrap().unwrap()), Some(2));
    // One slot left (2 failures, max 2): the next failure passes the limit and locks, in the same transaction.
    assert_eq!(store.reserve_attempt("u1", "OTP", 2, 0).await.unwrap(), Some(3));
    assert_eq!(store.reserve_attempt("u1", "OTP", 2, 0).await.unwrap(), None);
    assert_eq!(store.record_failure("u1", &otp, 6).await.unwrap(), failure(3, true, None));
    let u = store.get_user("u1").await.unwrap().unwrap();
    assert_eq!((u.locked, u.lock_reason.as_deref(), u.locked_at), (true, Some(reason), Some(6)));
    store.apply(&[Effect::Unlock { user_id: "u1".into(), at: 7 }]).await.unwrap();
    for _ in 0..2 {
        store.record_failure("u1", &otp, 8).await.unwrap();
    }
    assert_eq!(store.reserve_attempt("u1", "PASSWORD", 2, 0).await.unwrap(), Some(1), "counters are per method");
    assert_eq!(store.record_failure("u1", &locking("PASSWORD", 2), 9).await.unwrap(), failure(1, false, None));

    // 200 parallel reservations: exactly max + 1 succeed.
    let store2: Arc<dyn Store> = store.clone();
    let results = join_all((0..200).map(|_| {
        let s = store2.clone();
        tokio::spawn(async move { s.reserve_attempt("u1", "MTAN", 5, 0).await.unwrap() })
    }))
    .await;
    assert_eq!(results.into_iter().filter(|r| matches!(r, Ok(Some(_)))).count(), 6);
    store.record_failure("u1", &locking("MTAN", 5), 10).await.unwrap();

    store.apply(&[Effect::ResetCounters { user_id: "u1".into(), method_ids: vec!["OTP".into()] }]).await.unwrap();
    let user = store.get_user("u1").await.unwrap().unwrap();
    assert_eq!(user.failed_attempts.keys().collect::<Vec<_>>(), vec!["MTAN", "PASSWORD"]);

    // An automatic lock keeps an existing reason; an administrator's replaces it.
    let lock = |reason: &str, replace| Effect::Lock { user_id: "u1".into(), reason: reason.into(), at: 50, replace };
    store.apply(&[lock("LockReason.InitiatedByAdmin", true)]).await.unwrap();
    store.apply(&[lock("LockReason.TooManyAuthAtts.OTP", false)]).await.unwrap();
    let user = store.get_user("u1").await.unwrap().unwrap();
    assert!(user.locked);
    assert_eq!(user.lock_reason.as_deref(), Some("LockReason.InitiatedByAdmin"));
    assert_eq!(user.locked_at, Some(50));
    store.apply(&[Effect::Unlock { user_id: "u1".into(), at: 60 }]).await.unwrap();
    let user = store.get_user("u1").await.unwrap().unwrap();
    assert!(!user.locked && user.lock_reason.is_none() && user.failed_attempts.is_empty());

    store
        .apply(&[Effect::SetPassword { user_id: "u1".into(), password_hash: "$argon2id$x".into(), at: 70 }])
        .await
        .unwrap();
    let user = store.get_user("u1").await.unwrap().unwrap();
    assert_eq!((user.password_hash.as_deref(), user.password_changed_at), (Some("$argon2id$x"), Some(70)));
    env.cleanup().await;
}

/// Many flows' first writes at once, as a burst of identify calls makes them: they are committed in groups, and
/// each still gets its own answer — one flow per id, the effects of the winner only, and a start whose effects
/// fail fails alone.
async fn flow_starts_race_in_groups(backend: Backend) {
    let env = TestEnv::new(backend).await;
    let store = env.store().await;
    let start = |id: usize, copy: usize| started_flow(&format!("flow-{id}"), &format!("hash-{id}-{copy}"));
    // An audit event whose id is taken makes its start fail (and the batch it is in, at first).
    assert!(store.create_flow_session(&start(999, 0), &[Effect::Audit(audit("taken", 100))]).await.unwrap());
    let calls = (0..60).map(|n| {
        let store = store.clone();
        async move {
            let (id, copy) = (n % 30, n / 30);
            let event = if n == 15 { audit("taken", 100) } else { audit(&format!("race-{n}"), 100) };
            (n, store.create_flow_session(&start(id, copy), &[Effect::Audit(event)]).await)
        }
    });
    let results = join_all(calls).await;
    let failed: Vec<usize> = results.iter().filter(|(_, r)| r.is_err()).map(|(n, _)| *n).collect();
    // Call 15 (flow 15's first copy) carries the taken id: it fails with its batch, which is then written start
    // by start, and call 45 (the second copy) creates flow 15. Only where call 45's batch commits first (on
    // PostgreSQL two batches are written at once) does call 15 find the flow there and write nothing, not failing.
    // SQLite writes one batch at a time, in order.
    match &results[15].1 {
        Err(_) => assert_eq!(failed, [15], "only the start with the taken id fails"),
        Ok(created) => {
            assert!(backend == Backend::Postgres && !created, "call 15 neither failed nor lost the race: {created}");
            assert_eq!(failed, Vec::<usize>::new());
        }
    }
    for id in 0..30 {
        let created: Vec<usize> =
            results.iter().filter(|(n, r)| n % 30 == id && matches!(r, Ok(true))).map(|(n, _)| *n).collect();
        assert_eq!(created.len(), 1, "flow {id}: exactly one start creates it, got {created:?}");
    }
    let events = store.query_audit(&AuditQuery { limit: 1000, ..AuditQuery::default() }).await.unwrap();
    let race_events = events.iter().filter(|e| e.id.starts_with("race-")).count();
    assert_eq!(race_events, 30, "one event per flow created, none of the failed start");
    for (n, r) in &results {
        let recorded = events.iter().any(|e| e.id == format!("race-{n}"));
        assert_eq!(recorded, matches!(r, Ok(true)), "call {n}: audit event written iff its flow was created");
    }

    // A cookie replayed at once: two starts of one flow with the very same token, in one batch that fails nowhere.
    let replays =
        (0..20).map(|n| {
            let store = store.clone();
            let session = started_flow(&format!("replayed-{}", n % 10), &format!("same-{}", n % 10));
            async move {
                (n, store.create_flow_session(&session, &[Effect::Audit(audit(&format!("replay-{n}"), 100))]).await)
            }
        });
    let results = join_all(replays).await;
    let events = store.query_audit(&AuditQuery { limit: 1000, ..AuditQuery::default() }).await.unwrap();
    for id in 0..10 {
        let created: Vec<usize> =
            results.iter().filter(|(n, r)| n % 10 == id && matches!(r, Ok(true))).map(|(n, _)| *n).collect();
        assert_eq!(created.len(), 1, "replayed flow {id}: exactly one start creates it, got {created:?}");
        let recorded: Vec<usize> =
            (0..20).filter(|n| n % 10 == id && events.iter().any(|e| e.id == format!("replay-{n}"))).collect();
        assert_eq!(recorded, created, "replayed flow {id}: only its creator's effects are written");
    }
    env.cleanup().await;
}

async fn flow_sessions(backend: Backend) {
    let env = TestEnv::new(backend).await;
    let store = env.store().await;
    let session = started_flow("42", "h1");
    assert!(store.create_flow_session(&session, &[Effect::Audit(audit("f1", 100))]).await.unwrap());
    // A second session with the same id (a raced first call of a flow started without a row) writes nothing,
    // its audit event included.
    let raced = NewFlowSession { token_hash: "h2".into(), ..session.clone() };
    assert!(!store.create_flow_session(&raced, &[Effect::Audit(audit("f2", 100))]).await.unwrap());
    assert!(matches!(store.acquire_flow_session("h2", 200, 1200).await.unwrap(), Acquired::NotFound));
    assert!(matches!(store.acquire_flow_session("nope", 200, 1200).await.unwrap(), Acquired::NotFound));
    let Acquired::Session(s) = store.acquire_flow_session("h1", 200, 1200).await.unwrap() else {
        panic!("not acquired")
    };
    assert_eq!(
        (s.id.as_str(), s.version, s.status, s.kind),
        ("42", 0, SessionStatus::Active, FlowKind::PublicSelfService)
    );
    assert!(
        matches!(store.acquire_flow_session("h1", 300, 1300).await.unwrap(), Acquired::Busy),
        "one request at a time"
    );

    let update = |version, step| FlowSessionUpdate {
        id: "42".into(),
        version,
        state: serde_json::json!({ "step": step }),
        status: SessionStatus::Active,
        last_seen_at: 400,
        token_hash: None,
    };
    assert!(store.commit_flow_session(&update(0, 1), &[Effect::Audit(audit("f2", 400))]).await.unwrap());
    assert!(
        !store.commit_flow_session(&update(0, 2), &[Effect::Audit(audit("f3", 400))]).await.unwrap(),
        "stale version"
    );
    assert!(store.list_audit(10).await.unwrap().iter().all(|e| e.id != "f3"), "a lost commit writes no effects");

    let Acquired::Session(s) = store.acquire_flow_session("h1", 500, 1500).await.unwrap() else {
        panic!("not acquired")
    };
    assert_eq!((s.version, s.state["step"].as_i64(), s.last_seen_at), (1, Some(1), 400));
    store.release_flow_session("42", 1).await.unwrap();
    assert!(matches!(store.acquire_flow_session("h1", 600, 1600).await.unwrap(), Acquired::Session(_)));
    // A lease left behind by a crashed request expires.
    assert!(matches!(store.acquire_flow_session("h1", 700, 1700).await.unwrap(), Acquired::Busy));
    assert!(matches!(store.acquire_flow_session("h1", 1701, 2701).await.unwrap(), Acquired::Session(_)));

    assert_eq!(store.purge(Spent::FlowSessions { expired_before: 10_000, idle_before: 0 }, 500).await.unwrap(), 0);
    assert_eq!(store.purge(Spent::FlowSessions { expired_before: 10_001, idle_before: 0 }, 500).await.unwrap(), 1);
    env.cleanup().await;
}

async fn outbox_and_audit(backend: Backend) {
    let env = TestEnv::new(backend).await;
    let store = env.store().await;
    let msg = |id: &str, at| OutboxMessage {
        id: id.into(),
        channel: Channel::Email,
        sealed: format!("sealed-{id}"),
        created_at: at,
        claimed_until: None,
    };
    store.apply(&[Effect::Enqueue(msg("m1", 100)), Effect::Enqueue(msg("m2", 200))]).await.unwrap();
    assert_eq!(store.pending_outbox().await.unwrap(), 2);
    assert!(store.claim_outbox(50, 1000, 10).await.unwrap().is_empty(), "not due yet");

    // Parallel claims never hand out one message twice.
    let claims = join_all((0..4).map(|_| store.claim_outbox(300, 5000, 10))).await;
    let mut ids: Vec<String> = claims.into_iter().flat_map(Result::unwrap).map(|c| c.message.id).collect();
    ids.sort();
    assert_eq!(ids, vec!["m1", "m2"]);

    store.mark_retry("m1", "connection refused", 2000).await.unwrap();
    store.mark_delivered(&["m2".to_owned()], 400).await.unwrap();
    assert_eq!(store.pending_outbox().await.unwrap(), 1);
    assert!(store.claim_outbox(1999, 9000, 10).await.unwrap().is_empty(), "retry not due");
    let again = store.claim_outbox(2000, 9000, 10).await.unwrap();
    assert_eq!(again.len(), 1);
    assert_eq!((again[0].message.sealed.as_str(), again[0].attempts), ("sealed-m1", 2));
    store.mark_abandoned("m1", "gave up", 2500).await.unwrap();
    assert_eq!(store.pending_outbox().await.unwrap(), 0);

    store
        .apply(&[Effect::Audit(audit("e1", 10)), Effect::Audit(audit("e2", 30)), Effect::Audit(audit("e3", 20))])
        .await
        .unwrap();
    let events = store.list_audit(2).await.unwrap();
    assert_eq!(events.iter().map(|e| e.id.as_str()).collect::<Vec<_>>(), vec!["e2", "e3"]);
    assert_eq!(events[0].details, serde_json::json!({ "n": 30 }));
    assert!(store.ping().await.is_ok());
    env.cleanup().await;
}

/// A message queued claimed (by the node whose worker takes it from memory) counts as in its first attempt: no
/// claim takes it before its claim ends, one does afterwards (the node stopped without delivering it), and a
/// delivery recorded by the node that queued it ends it.
async fn messages_claimed_as_they_are_queued_wait_out_their_claim(backend: Backend) {
    let env = TestEnv::new(backend).await;
    let store = env.store().await;
    let message = |id: &str, claimed_until| {
        Effect::Enqueue(OutboxMessage {
            id: id.into(),
            channel: Channel::Email,
            sealed: format!("sealed-{id}"),
            created_at: 1_000,
            claimed_until,
        })
    };
    store
        .apply(&[message("handed", Some(61_000)), message("left", None), message("delivered", Some(61_000))])
        .await
        .unwrap();
    assert_eq!(store.pending_outbox().await.unwrap(), 3);
    let now = store.claim_outbox(1_000, 61_000, 10).await.unwrap();
    assert_eq!(now.iter().map(|c| (c.message.id.as_str(), c.attempts)).collect::<Vec<_>>(), [("left", 1)]);
    store.mark_delivered(&["delivered".to_owned(), "left".to_owned()], 2_000).await.unwrap();
    assert!(store.claim_outbox(60_999, 120_000, 10).await.unwrap().is_empty(), "claimed until 61,000");
    let after = store.claim_outbox(61_001, 121_001, 10).await.unwrap();
    let after: Vec<(&str, i64, Option<i64>)> =
        after.iter().map(|c| (c.message.id.as_str(), c.attempts, c.message.claimed_until)).collect();
    assert_eq!(after, [("handed", 2, Some(121_001))], "the first attempt was the queuing node's");
    env.cleanup().await;
}

/// A burst queues far more messages than one claim takes. Every claim takes the oldest due ones, no more than its
/// limit and none twice — also once PostgreSQL plans the claim generically (after five runs) on a table it has
/// never analyzed, where `id IN (SELECT … LIMIT … FOR UPDATE SKIP LOCKED)` became a semi join that ran the subquery
/// once per pending row and claimed several times the limit.
async fn claims_take_at_most_their_limit_from_a_long_queue(backend: Backend) {
    let env = TestEnv::new(backend).await;
    let store = env.store().await;
    let message = |prefix: &str, i: i64| {
        Effect::Enqueue(OutboxMessage {
            id: format!("{prefix}{i:04}"),
            channel: Channel::Email,
            sealed: "x".repeat(500),
            created_at: 100 + i,
            claimed_until: None,
        })
    };
    // A quiet past: everything delivered, and PostgreSQL's statistics say so (as autovacuum's would).
    store.apply(&(0..300).map(|i| message("old", i)).collect::<Vec<_>>()).await.unwrap();
    let old: Vec<String> =
        store.claim_outbox(5_000, 60_000, 300).await.unwrap().into_iter().map(|c| c.message.id).collect();
    assert_eq!(old.len(), 300);
    store.mark_delivered(&old, 5_000).await.unwrap();
    if let Some(schema) = &env.schema {
        use sqlx::Connection as _;
        let mut conn = sqlx::PgConnection::connect(&crate::harness::postgres_url()).await.unwrap();
        sqlx::raw_sql(sqlx::AssertSqlSafe(format!("ANALYZE {schema}.outbox"))).execute(&mut conn).await.unwrap();
    }
    // Then the burst.
    store.apply(&(0..600).map(|i| message("m", 1_000 + i)).collect::<Vec<_>>()).await.unwrap();
    let mut claimed = Vec::new();
    for round in 0..12 {
        let batch = store.claim_outbox(10_000, 60_000, 16).await.unwrap();
        assert_eq!(batch.len(), 16, "round {round}");
        let ids: Vec<String> = batch.into_iter().map(|c| c.message.id).collect();
        store.mark_delivered(&ids, 10_000).await.unwrap();
        claimed.extend(ids);
    }
    let expected: Vec<String> = (0..12 * 16).map(|i| format!("m{:04}", 1_000 + i)).collect();
    let mut sorted = claimed.clone();
    sorted.sort();
    assert_eq!(sorted, expected, "the oldest, each once");
    assert_eq!(store.pending_outbox().await.unwrap(), 600 - 12 * 16);

    // A stopping worker gives back what it claimed and did not send: claimable again at once, attempt undone;
    // a delivered message stays delivered.
    let held = store.claim_outbox(10_000, 60_000, 3).await.unwrap();
    assert!(
        store
            .claim_outbox(10_001, 60_000, 600)
            .await
            .unwrap()
            .iter()
            .all(|c| held.iter().all(|h| h.message.id != c.message.id))
    );
    let ids: Vec<String> = held.iter().map(|c| c.message.id.clone()).collect();
    store.mark_delivered(&ids[..1], 10_002).await.unwrap();
    store.release_claims(&ids).await.unwrap();
    let again = store.claim_outbox(10_003, 70_000, 600).await.unwrap();
    let mut back: Vec<(String, i64)> =
        again.iter().filter(|c| ids.contains(&c.message.id)).map(|c| (c.message.id.clone(), c.attempts)).collect();
    back.sort();
    assert_eq!(back, [(ids[1].clone(), 1), (ids[2].clone(), 1)]);
    store.release_claims(&[]).await.unwrap();
    env.cleanup().await;
}

async fn approval_events_reach_waiters(backend: Backend) {
    use gatehouse_core::ports::{Approval, ApprovalStatus};
    let env = TestEnv::new(backend).await;
    let node_a = env.store().await;
    // On PostgreSQL a second store (another node) hears it through LISTEN/NOTIFY; SQLite has one process.
    let node_b = if backend == Backend::Postgres { env.second_store().await } else { node_a.clone() };
    node_a.create_user(&new_user("u1", "uma", &[]), &audit("a1", 1)).await.unwrap();
    let mut events = node_b.approval_events();
    let approval = Approval {
        id: "ap1".into(),
        user_id: "u1".into(),
        kind: "login".into(),
        context: serde_json::json!({}),
        number: 42,
        choices: vec![17, 42, 88],
        nonce: "n".into(),
        status: ApprovalStatus::Pending,
        device_id: None,
        created_at: 10,
        expires_at: 10_000,
        decided_at: None,
    };
    // The next event that names something: a store may also send LOOK_AGAIN in between (SQLite's, once a second
    // after commits, since another process may share its file).
    let next = async |events: &mut tokio::sync::broadcast::Receiver<String>| loop {
        let got =
            tokio::time::timeout(std::time::Duration::from_secs(5), events.recv()).await.expect("an event").unwrap();
        if got != gatehouse_core::ports::LOOK_AGAIN {
            break got;
        }
    };
    node_a.apply(&[Effect::CreateApproval(approval)]).await.unwrap();
    assert_eq!(next(&mut events).await, "created:u1");
    let device = device("d1");
    node_a
        .apply(&[Effect::CreateActivation { code_hash: "h".into(), user_id: "u1".into(), at: 1, expires_at: 100 }])
        .await
        .unwrap();
    assert_eq!(node_a.activate_device("h", 50, &device).await.unwrap().as_deref(), Some("u1"));
    assert_eq!(node_a.activate_device("h", 51, &device).await.unwrap(), None, "an activation code works once");
    assert!(node_a.decide_approval("ap1", "d1", true, 20).await.unwrap());
    assert!(!node_a.decide_approval("ap1", "d1", false, 21).await.unwrap(), "decided once");
    assert_eq!(next(&mut events).await, "decided:ap1");
    assert_eq!(node_b.get_approval("ap1").await.unwrap().unwrap().status, ApprovalStatus::Approved);
    env.cleanup().await;
}

async fn continuation_tokens_work_once(backend: Backend) {
    let env = TestEnv::new(backend).await;
    let store = env.store().await;
    let other = env.second_store().await;
    store.create_user(&new_user("u1", "alice", &[]), &audit("a1", 1)).await.unwrap();
    let token = |hash: &str, expires_at| {
        Effect::CreateContinuationToken(NewContinuationToken {
            token_hash: hash.into(),
            user_id: "u1".into(),
            flow_id: "reset-continue".into(),
            created_at: 10,
            expires_at,
        })
    };
    store.apply(&[token("t1", 1000), token("t2", 1000)]).await.unwrap();

    // Only in its flow, only before it expires.
    assert_eq!(store.consume_continuation_token("t1", "other-flow", 500).await.unwrap(), None);
    assert_eq!(store.consume_continuation_token("t2", "reset-continue", 1000).await.unwrap(), None);
    assert_eq!(store.consume_continuation_token("nope", "reset-continue", 500).await.unwrap(), None);

    // 40 parallel uses over two nodes: exactly one wins.
    let uses = (0..40).map(|i| {
        let s = if i % 2 == 0 { store.clone() } else { other.clone() };
        async move { s.consume_continuation_token("t1", "reset-continue", 500).await.unwrap() }
    });
    let won: Vec<String> = join_all(uses).await.into_iter().flatten().collect();
    assert_eq!(won, vec!["u1".to_owned()]);

    // A deleted user's tokens go with the user.
    store.apply(&[token("t3", 1000), Effect::DeleteUser { user_id: "u1".into() }]).await.unwrap();
    assert_eq!(store.consume_continuation_token("t3", "reset-continue", 500).await.unwrap(), None);
    env.cleanup().await;
}

async fn secret_answers_are_replaced_whole(backend: Backend) {
    let env = TestEnv::new(backend).await;
    let store = env.store().await;
    store.create_user(&new_user("u1", "alice", &[]), &audit("a1", 1)).await.unwrap();
    assert!(store.get_secret_answers("u1").await.unwrap().is_empty());
    let set = |pairs: &[(&str, &str)]| Effect::SetSecretAnswers {
        user_id: "u1".into(),
        answers: pairs.iter().map(|(q, h)| ((*q).to_owned(), (*h).to_owned())).collect(),
        at: 5,
    };
    store.apply(&[set(&[("q.b", "hb"), ("q.a", "ha")])]).await.unwrap();
    let pairs = |v: Vec<(String, String)>| v.into_iter().map(|(q, h)| format!("{q}={h}")).collect::<Vec<_>>();
    assert_eq!(pairs(store.get_secret_answers("u1").await.unwrap()), vec!["q.a=ha", "q.b=hb"]);
    store.apply(&[set(&[("q.c", "hc")])]).await.unwrap();
    assert_eq!(pairs(store.get_secret_answers("u1").await.unwrap()), vec!["q.c=hc"]);
    env.cleanup().await;
}

/// The admin list's factors: confirmed, unconfirmed and absent TOTP credentials of a page of users in one call
/// (ids without a user are simply absent).
async fn totp_states_of_many_users_at_once(backend: Backend) {
    let env = TestEnv::new(backend).await;
    let store = env.store().await;
    for (id, name) in [("u1", "alice"), ("u2", "bob"), ("u3", "carol")] {
        store.create_user(&new_user(id, name, &[]), &audit(id, 1)).await.unwrap();
    }
    let set = |user: &str| Effect::SetTotp { user_id: user.into(), sealed_secret: "sealed".into(), at: 5 };
    store.apply(&[set("u1"), set("u2"), Effect::ConfirmTotp { user_id: "u1".into() }]).await.unwrap();
    let ids: Vec<String> = ["u1", "u2", "u3", "nobody"].map(String::from).to_vec();
    let states = store.totp_states(&ids).await.unwrap();
    assert_eq!(states.into_iter().collect::<Vec<_>>(), [("u1".to_owned(), true), ("u2".to_owned(), false)]);
    assert!(store.totp_states(&[]).await.unwrap().is_empty());
    // More ids than one statement takes.
    let many: Vec<String> = (0..1200).map(|i| format!("x{i}")).chain(["u1".to_owned()]).collect();
    assert_eq!(store.totp_states(&many).await.unwrap().len(), 1);

    // What a selection offers: a confirmed credential counts, an unconfirmed one does not; any device counts.
    let enrolled = |totp, device| gatehouse_core::ports::Enrolled { totp, device };
    assert_eq!(store.enrolled("u1").await.unwrap(), enrolled(true, false));
    assert_eq!(store.enrolled("u2").await.unwrap(), enrolled(false, false));
    assert_eq!(store.enrolled("nobody").await.unwrap(), enrolled(false, false));
    let device = device("d1");
    let activation = Effect::CreateActivation { code_hash: "h".into(), user_id: "u2".into(), at: 1, expires_at: 100 };
    store.apply(&[activation]).await.unwrap();
    assert_eq!(store.activate_device("h", 50, &device).await.unwrap().as_deref(), Some("u2"));
    assert_eq!(store.enrolled("u2").await.unwrap(), enrolled(false, true));
    assert_eq!(store.enrolled("u3").await.unwrap(), enrolled(false, false));
    env.cleanup().await;
}

/// A token is found by its hash; its use is written when the last one is a minute old or more, so a stream of
/// admin reads does not write once per request.
async fn admin_tokens_note_their_use_to_the_minute(backend: Backend) {
    let env = TestEnv::new(backend).await;
    let store = env.store().await;
    let used = |store: Arc<dyn Store>| async move {
        let tokens = store.list_admin_tokens().await.unwrap();
        tokens.into_iter().map(|(name, _, used)| (name, used)).collect::<Vec<_>>()
    };
    assert!(store.create_admin_token("ops", "hash-ops", 1_000).await.unwrap());
    assert!(!store.create_admin_token("ops", "hash-other", 1_000).await.unwrap());
    assert_eq!(used(store.clone()).await, [("ops".to_owned(), None)]);
    assert_eq!(store.use_admin_token("hash-ops", 5_000).await.unwrap().as_deref(), Some("ops"));
    assert_eq!(used(store.clone()).await, [("ops".to_owned(), Some(5_000))]);
    // Within the minute: found, not written.
    assert_eq!(store.use_admin_token("hash-ops", 64_999).await.unwrap().as_deref(), Some("ops"));
    assert_eq!(used(store.clone()).await, [("ops".to_owned(), Some(5_000))]);
    assert_eq!(store.use_admin_token("hash-ops", 65_000).await.unwrap().as_deref(), Some("ops"));
    assert_eq!(used(store.clone()).await, [("ops".to_owned(), Some(65_000))]);
    // A clock behind the recorded use never moves it back.
    assert_eq!(store.use_admin_token("hash-ops", 1_000).await.unwrap().as_deref(), Some("ops"));
    assert_eq!(used(store.clone()).await, [("ops".to_owned(), Some(65_000))]);
    assert_eq!(store.use_admin_token("hash-unknown", 70_000).await.unwrap(), None);
    assert!(store.delete_admin_token("ops").await.unwrap());
    assert_eq!(store.use_admin_token("hash-ops", 200_000).await.unwrap(), None);
    env.cleanup().await;
}

async fn rate_limit_windows(backend: Backend) {
    let env = TestEnv::new(backend).await;
    let store = env.store().await;
    let other = env.second_store().await;
    // 30 hits at once over two nodes on a limit of 10: exactly 20 are refused, each told when the window ends.
    let hits = (0..30).map(|i| {
        let s = if i % 2 == 0 { store.clone() } else { other.clone() };
        async move { s.hit_rate_limit("ip:198.51.100.1", 60_000, 10, 1_000).await.unwrap() }
    });
    let refused: Vec<i64> = join_all(hits).await.into_iter().flatten().collect();
    assert_eq!(refused.len(), 20);
    assert!(refused.iter().all(|&ms| ms == 60_000));
    // Another key has its own window; a new window starts once the old one is over.
    assert_eq!(store.hit_rate_limit("ip:198.51.100.2", 60_000, 10, 1_000).await.unwrap(), None);
    assert_eq!(store.hit_rate_limit("ip:198.51.100.1", 60_000, 10, 61_000).await.unwrap(), None);
    // Spent windows are purged.
    assert_eq!(store.purge(Spent::RateLimitWindows { before: 61_000 }, 500).await.unwrap(), 1);
    env.cleanup().await;
}

/// A completed login's write clears the temporary lock and the unlock count in the statement that takes the
/// user's row; a batch that also sets a temporary lock for the user keeps the order its effects came in.
async fn temporary_locks_and_unlock_counts_change_in_the_order_given(backend: Backend) {
    let env = TestEnv::new(backend).await;
    let store = env.store().await;
    store.create_user(&new_user("u1", "dana", &[]), &audit("a1", 1)).await.unwrap();
    let reason = "LockReason.TooManyAuthAtts.PASSWORD";
    let lock = Effect::Lock { user_id: "u1".into(), reason: reason.into(), at: 2, replace: false };
    store.apply(&[lock]).await.unwrap();
    store.self_unlock("u1", &[reason.to_owned()], Some(3), &[], 3).await.unwrap();
    let temp = |until: Option<i64>| Effect::SetTemporaryLock { user_id: "u1".into(), until };
    let reset = || Effect::ResetUnlockCount { user_id: "u1".into() };
    let state = || async {
        let u = store.get_user("u1").await.unwrap().unwrap();
        (u.temp_locked_until, u.unlock_count)
    };
    assert_eq!(state().await, (None, 1));
    store.apply(&[temp(Some(100))]).await.unwrap();
    assert_eq!(state().await, (Some(100), 1));
    store.apply(&[temp(Some(200)), temp(None), reset()]).await.unwrap();
    assert_eq!(state().await, (None, 0), "the clear came last");
    store.apply(&[temp(None), temp(Some(300))]).await.unwrap();
    assert_eq!(state().await, (Some(300), 0), "the lock came last");
    store.self_unlock("u1", &[reason.to_owned()], Some(3), &[], 4).await.unwrap();
    let login =
        [Effect::ResetCounters { user_id: "u1".into(), method_ids: vec!["PASSWORD".into()] }, temp(None), reset()];
    store.apply(&login).await.unwrap();
    assert_eq!(state().await, (None, 0));
    // A user that does not exist: the same statements change nothing.
    let nobody = [
        Effect::SetTemporaryLock { user_id: "u2".into(), until: None },
        Effect::ResetUnlockCount { user_id: "u2".into() },
    ];
    store.apply(&nobody).await.unwrap();
    assert!(store.get_user("u2").await.unwrap().is_none());
}
