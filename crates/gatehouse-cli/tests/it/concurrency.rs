//! Every limit holds under parallel requests, on one node and across two nodes sharing the database.

use std::collections::BTreeMap;
use std::sync::Arc;

use futures::future::join_all;
use tokio::sync::Barrier;

use gatehouse_core::config::PublicFlowFailures;

use crate::harness::{Backend, Client, Resp, TestEnv, TestServer, reset_until_otp};
use crate::on_both_backends;

on_both_backends!(
    parallel_wrong_otps_on_one_flow,
    parallel_wrong_otps_across_flows_and_nodes,
    parallel_wrong_otps_across_nodes_throttle,
    two_parallel_calls_one_wins,
    an_overloaded_hashing_pool_charges_nothing,
    logins_and_admin_changes_never_deadlock
);

fn tally(responses: &[Resp]) -> BTreeMap<String, usize> {
    let mut t = BTreeMap::new();
    for r in responses {
        let key = format!("{} {}", r.status, r.error_codes().join(","));
        *t.entry(key).or_insert(0) += 1;
    }
    t
}

fn wrong_code(otp: &str) -> &'static str {
    if otp == "00000000" { "11111111" } else { "00000000" }
}

/// Fires all requests at once.
async fn burst(clients: Vec<Client>, otps: Vec<String>) -> Vec<Resp> {
    let barrier = Arc::new(Barrier::new(clients.len()));
    let tasks = clients.into_iter().zip(otps).map(|(mut c, otp)| {
        let b = barrier.clone();
        tokio::spawn(async move {
            b.wait().await;
            c.check_otp(&otp).await
        })
    });
    join_all(tasks).await.into_iter().map(Result::unwrap).collect()
}

async fn parallel_wrong_otps_on_one_flow(backend: Backend) {
    let env = TestEnv::new(backend).await;
    let mut config = env.config();
    // Only the flow's own limit (3) matters here.
    config.lockout.max_failed_attempts = 1000;
    let server = env.start(config).await;
    env.add_user("pia", Some("pia@example.com"), None).await;
    let (c, otp) = reset_until_otp(&server, &env.outbox(), "pia", "pia@example.com").await;
    let wrong = wrong_code(&otp);

    let responses = burst(vec![c.clone(); 50], vec![wrong.to_owned(); 50]).await;
    let t = tally(&responses);
    assert!(responses.iter().all(|r| r.status < 500), "{t:?}");
    let evaluated = responses.iter().filter(|r| r.error_codes() == ["EMAIL_OTP_WRONG"]).count();
    assert!((1..=3).contains(&evaluated), "{t:?}");
    assert!(
        responses.iter().all(|r| matches!(r.error_codes().as_slice(), [c] if c == "EMAIL_OTP_WRONG" || c == "CONCURRENT_ACCESS" || c == "UNEXPECTED_CALL")),
        "{t:?}"
    );
    // The demo throttles: public failures count on the public counter.
    let counted = env.user("pia").await.failed_attempts.get("EMAIL_OTP:PUBLIC").copied().unwrap_or(0);
    assert_eq!(counted, i64::try_from(evaluated).unwrap(), "every evaluated guess is counted once: {t:?}");

    // Go on one by one: the flow ends after exactly 3 wrong guesses in all.
    let mut c = c;
    let mut total = evaluated;
    while total < 3 {
        let r = c.check_otp(wrong).await;
        assert_eq!(r.error_codes(), vec!["EMAIL_OTP_WRONG"]);
        total += 1;
        assert_eq!(r.status, if total == 3 { 403 } else { 400 });
    }
    assert_eq!(c.check_otp(&otp).await.error_codes(), vec!["UNEXPECTED_CALL"]);
    assert_eq!(env.user("pia").await.failed_attempts.get("EMAIL_OTP:PUBLIC"), Some(&3));
    server.stop().await;
    env.cleanup().await;
}

/// 50 flows of one user on two nodes, one wrong code each, all at once; returns a flow whose right code is known.
async fn flood_of_wrong_codes(env: &TestEnv, node_a: &TestServer, node_b: &TestServer) -> (Client, String) {
    env.add_user("quinn", Some("quinn@example.com"), None).await;
    let (known, known_otp) = reset_until_otp(node_a, &env.outbox(), "quinn", "quinn@example.com").await;
    let mut clients = Vec::new();
    for i in 0..50 {
        let node = if i % 2 == 0 { node_a } else { node_b };
        let mut c = node.client();
        c.select("password-reset").await.expect(200);
        c.identify("quinn").await.expect(200);
        clients.push(c);
    }
    // Codes are 8 random digits; "00000000" is wrong for all of them but with negligible probability.
    let responses = burst(clients, vec!["00000000".to_owned(); 50]).await;
    let t = tally(&responses);
    assert_eq!(t.get("400 EMAIL_OTP_WRONG"), Some(&50), "every answer looks the same: {t:?}");
    (known, known_otp)
}

async fn parallel_wrong_otps_across_nodes_throttle(backend: Backend) {
    let env = TestEnv::new(backend).await;
    let config = env.config();
    assert_eq!(config.lockout.public_flow_failures, PublicFlowFailures::Throttle);
    let base_ms = i64::try_from(config.lockout.public_throttle.base_ms).unwrap();
    let node_a = env.start(config.clone()).await;
    let node_b = env.start(config).await;
    let (mut known, known_otp) = flood_of_wrong_codes(&env, &node_a, &node_b).await;

    // 3 failures are allowed, the 4th passes the limit and blocks the code; the other 46 are not looked at.
    let user = env.user("quinn").await;
    assert_eq!(user.failed_attempts.get("EMAIL_OTP:PUBLIC"), Some(&4), "{:?}", user.failed_attempts);
    assert!(!user.locked, "throttle locks nobody");
    let audit = env.store().await.list_audit(1000).await.unwrap();
    // In public flows what a check did to the counter is told in the step's own event (no event of its own: that
    // would be a write only real users cost).
    let count = |event: &str| audit.iter().filter(|e| e.details["counter"]["event"] == event).count();
    let failed = audit.iter().filter(|e| e.event == "otp.failed").count();
    assert_eq!((failed, count("factor.refused"), count("factor.throttled")), (50, 46, 1));
    // Blocked: the right code of another flow is refused like a wrong one, until the block is over.
    assert_eq!(known.check_otp(&known_otp).await.expect(400).error_codes(), vec!["EMAIL_OTP_WRONG"]);
    env.clock.advance_ms(base_ms);
    assert_eq!(known.check_otp(&known_otp).await.expect(200).next_step(), Some("NEW_PASSWORD_REQUIRED"));
    node_a.stop().await;
    node_b.stop().await;
    env.cleanup().await;
}

async fn parallel_wrong_otps_across_flows_and_nodes(backend: Backend) {
    let env = TestEnv::new(backend).await;
    let mut config = env.config();
    config.lockout.public_flow_failures = PublicFlowFailures::Lock;
    let node_a = env.start(config.clone()).await;
    let node_b = env.start(config).await;
    let (mut known, known_otp) = flood_of_wrong_codes(&env, &node_a, &node_b).await;

    // The lockout allows 3 failures; the 4th exceeds it and locks. Not one guess more was evaluated.
    let user = env.user("quinn").await;
    assert_eq!(user.failed_attempts.get("EMAIL_OTP"), Some(&4), "{:?}", user.failed_attempts);
    assert!(user.locked);
    assert_eq!(user.lock_reason.as_deref(), Some("LockReason.TooManyAuthAtts.EMAIL_OTP"));
    let audit = env.store().await.list_audit(1000).await.unwrap();
    let failed = audit.iter().filter(|e| e.event == "otp.failed").count();
    // Answers beyond the limit are not looked at: refused by the exhausted counter, or — once the lock is
    // visible — in stealth mode.
    let refused = audit.iter().filter(|e| e.details["counter"]["event"] == "factor.refused").count();
    let locked = audit.iter().filter(|e| e.details["counter"]["event"] == "user.locked").count();
    assert_eq!(locked, 1, "the failure that locked says so");
    let stealth = audit.iter().filter(|e| e.event == "otp.failed" && e.outcome == "stealth").count();
    assert_eq!((failed, refused + stealth), (50, 46));

    // The right code of another flow is refused now too.
    assert_eq!(known.check_otp(&known_otp).await.expect(400).error_codes(), vec!["EMAIL_OTP_WRONG"]);
    node_a.stop().await;
    node_b.stop().await;
    env.cleanup().await;
}

async fn two_parallel_calls_one_wins(backend: Backend) {
    let env = TestEnv::new(backend).await;
    let mut config = env.config();
    // A slow hash keeps the first call busy long enough for the second to arrive while it runs.
    config.hashing.memory_kib = 19456;
    config.hashing.iterations = 12;
    let server = env.start(config).await;
    env.add_user("rui", Some("rui@example.com"), Some("Old-Cobalt-Lantern-1")).await;
    let (mut c, otp) = reset_until_otp(&server, &env.outbox(), "rui", "rui@example.com").await;
    c.check_otp(&otp).await.expect(200);

    let barrier = Arc::new(Barrier::new(2));
    let tasks = ["Fresh-Marble-Otter-42", "Other-Marble-Otter-43"].map(|pw| {
        let (b, mut c) = (barrier.clone(), c.clone());
        tokio::spawn(async move {
            b.wait().await;
            c.set_password(pw).await
        })
    });
    let responses: Vec<Resp> = join_all(tasks).await.into_iter().map(Result::unwrap).collect();
    let t = tally(&responses);
    assert_eq!(t.get("400 CONCURRENT_ACCESS"), Some(&1), "{t:?}");
    assert_eq!(t.get("200 "), Some(&1), "{t:?}");
    let concurrent = responses.iter().find(|r| r.status == 400).unwrap();
    assert!(concurrent.body["meta"].get("nextStep").is_none());
    server.stop().await;
    env.cleanup().await;
}

on_both_backends!(a_full_hashing_queue_answers_503_and_changes_nothing);

async fn a_full_hashing_queue_answers_503_and_changes_nothing(backend: Backend) {
    let env = TestEnv::new(backend).await;
    let mut config = env.config();
    // One hashing thread, no queue, slow hashes: a second hash at the same time is refused.
    config.hashing.workers = 1;
    config.hashing.queue_capacity = 0;
    config.hashing.memory_kib = 19456;
    config.hashing.iterations = 12;
    let server = env.start(config).await;
    let mut flows = Vec::new();
    for i in 0..4 {
        let (name, mail) = (format!("hana{i}"), format!("hana{i}@example.com"));
        env.add_user(&name, Some(&mail), None).await;
        let (mut c, otp) = reset_until_otp(&server, &env.outbox(), &name, &mail).await;
        c.check_otp(&otp).await.expect(200);
        flows.push(c);
    }
    let barrier = Arc::new(Barrier::new(flows.len()));
    let tasks = flows.clone().into_iter().map(|mut c| {
        let b = barrier.clone();
        tokio::spawn(async move {
            b.wait().await;
            c.set_password("Fresh-Marble-Otter-42").await
        })
    });
    let responses: Vec<Resp> = join_all(tasks).await.into_iter().map(Result::unwrap).collect();
    let t = tally(&responses);
    let overloaded: Vec<usize> = (0..responses.len()).filter(|&i| responses[i].status == 503).collect();
    assert!(!overloaded.is_empty() && overloaded.len() < 4, "{t:?}");
    for &i in &overloaded {
        assert_eq!(responses[i].error_codes(), vec!["SERVICE_OVERLOADED"]);
        assert_eq!(responses[i].headers.get("retry-after").and_then(|v| v.to_str().ok()), Some("1"));
    }
    // Nothing changed for the refused calls: each retries and succeeds.
    for i in overloaded {
        let mut c = flows[i].clone();
        let mut r = c.set_password("Fresh-Marble-Otter-42").await;
        while r.status == 503 {
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            r = c.set_password("Fresh-Marble-Otter-42").await;
        }
        r.expect(200);
    }
    server.stop().await;
    env.cleanup().await;
}

/// Logins of `username` with `password`, all at once, each from its own client.
async fn login_burst(server: &crate::harness::TestServer, username: &str, password: &str, n: usize) -> Vec<Resp> {
    let barrier = Arc::new(Barrier::new(n));
    let tasks = (0..n).map(|_| {
        let (b, mut c) = (barrier.clone(), server.client());
        let (username, password) = (username.to_owned(), password.to_owned());
        tokio::spawn(async move {
            b.wait().await;
            c.login(&username, &password).await
        })
    });
    join_all(tasks).await.into_iter().map(Result::unwrap).collect()
}

async fn an_overloaded_hashing_pool_charges_nothing(backend: Backend) {
    let env = TestEnv::new(backend).await;
    let mut config = env.config();
    // One hashing worker and no queue: whoever finds it busy gets 503.
    config.hashing.workers = 1;
    config.hashing.queue_capacity = 0;
    let server = env.start(config).await;
    env.add_user("hana", None, Some("Old-Cobalt-Lantern-1")).await;

    // Her right password while the pool is full: 503s, never a failed attempt.
    let answers = login_burst(&server, "hana", "Old-Cobalt-Lantern-1", 40).await;
    let t = tally(&answers);
    assert!(t.keys().any(|k| k.starts_with("503")), "{t:?}");
    // While more checks of her than the limit allows are in flight, the surplus is refused as locked (pending
    // answers hold a slot, docs/api.md); none of it may stay behind.
    assert!(answers.iter().all(|r| matches!(r.status, 200 | 503) || r.error_codes() == ["USER_LOCKED"]), "{t:?}");
    let hana = env.user("hana").await;
    assert_eq!(hana.failed_attempts.get("PASSWORD").copied().unwrap_or(0), 0, "{t:?}");
    assert!(!hana.locked);
    assert_eq!(server.client().login("hana", "Old-Cobalt-Lantern-1").await.status, 200);

    // 200 wrong passwords while the pool answers 503s: afterwards "over the limit" and "locked" agree.
    let answers = login_burst(&server, "hana", "wrong-password", 200).await;
    let t = tally(&answers);
    let hana = env.user("hana").await;
    let count = hana.failed_attempts.get("PASSWORD").copied().unwrap_or(0);
    assert!(count <= 6, "never more than the limit + 1 counted: {count} {t:?}");
    // Failures and the lock are written together and checks in flight are counted apart, so the two agree.
    assert_eq!(hana.locked, count > 5, "locked {} with PASSWORD {count}: {t:?}", hana.locked);
    if hana.locked {
        assert_eq!(hana.lock_reason.as_deref(), Some("LockReason.TooManyAuthAtts.PASSWORD"));
    }
    server.stop().await;
    env.cleanup().await;
}

/// Login completions, wrong passwords, unlocks and password changes of one user all at once: every transaction
/// takes the user's row first, so none waits for another in the opposite order (PostgreSQL would abort one as a
/// deadlock, answered 503; SQLite would time out).
async fn logins_and_admin_changes_never_deadlock(backend: Backend) {
    use gatehouse_core::ports::Effect;
    let env = TestEnv::new(backend).await;
    let server = env.start(env.config()).await;
    let kai = env.add_user("kai", None, Some("Old-Cobalt-Lantern-1")).await;
    let hash = env.user("kai").await.password_hash.unwrap();
    let store = env.store().await;
    for round in 0..5 {
        let barrier = Arc::new(Barrier::new(24));
        let mut http = Vec::new();
        let mut direct = Vec::new();
        for i in 0..16 {
            let (b, mut c) = (barrier.clone(), server.client());
            let password = if i % 2 == 0 { "Old-Cobalt-Lantern-1" } else { "wrong-password" };
            http.push(tokio::spawn(async move {
                b.wait().await;
                c.login("kai", password).await
            }));
        }
        for i in 0..8 {
            let (b, store, id, hash) = (barrier.clone(), store.clone(), kai.id.clone(), hash.clone());
            direct.push(tokio::spawn(async move {
                b.wait().await;
                let at = 1_000 + i;
                let effects = if i % 2 == 0 {
                    vec![Effect::Unlock { user_id: id, at }]
                } else {
                    vec![
                        Effect::SetPassword { user_id: id.clone(), password_hash: hash, at },
                        Effect::ResetCounters { user_id: id, method_ids: vec!["PASSWORD".into()] },
                    ]
                };
                store.apply(&effects).await
            }));
        }
        let answers: Vec<Resp> = join_all(http).await.into_iter().map(Result::unwrap).collect();
        let t = tally(&answers);
        assert!(answers.iter().all(|r| r.status < 500), "round {round}: {t:?}");
        for result in join_all(direct).await {
            assert!(result.unwrap().is_ok(), "round {round}");
        }
    }
    server.stop().await;
    env.cleanup().await;
}
