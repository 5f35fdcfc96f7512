//! A flow that was only started lives in its sealed cookie: starting writes nothing, the first call that does
//! something creates the row together with the start's audit event, and a started flow's cookie used twice —
//! raced on two nodes, or replayed later — gets exactly one flow.

use std::sync::Arc;

use futures::future::join_all;
use tokio::sync::Barrier;

use crate::counting::CountingStore;
use crate::harness::{Backend, TestEnv, mails_in, wait_for_mails};
use crate::on_both_backends;

on_both_backends!(
    a_started_flow_writes_nothing_until_its_first_call,
    a_started_flow_raced_on_two_nodes_runs_once,
    a_whole_reset_costs_this_much,
    a_password_login_costs_this_much
);

async fn a_started_flow_writes_nothing_until_its_first_call(backend: Backend) {
    let env = TestEnv::new(backend).await;
    env.add_user("olga", Some("olga@example.com"), Some("Quiet-Harbor-Gull-58")).await;
    let (store, server) = CountingStore::serve(&env, env.config()).await;
    store.take();

    let mut c = server.client();
    let r = c.select("password-reset").await;
    r.expect(200);
    let started = c.cookie.clone().expect("a flow cookie");
    assert!(started.starts_with("p."), "a sealed cookie: {started}");
    assert_eq!(store.take_foreground(), Vec::<String>::new(), "select reads and writes nothing");
    // Looking at it, or calling out of turn, writes nothing either.
    let r = c.check_otp("12345678").await;
    assert_eq!((r.status, r.error_codes()), (400, vec!["UNEXPECTED_CALL".to_owned()]), "{}", r.body);
    assert_eq!(store.take_foreground(), Vec::<String>::new());

    let r = c.identify("olga").await;
    r.expect(200);
    let calls = store.take_foreground();
    let (effects, calls): (Vec<_>, Vec<_>) = calls.iter().partition(|c| c.starts_with("  effect"));
    assert_eq!(calls, ["find_user_by_login", "create_flow_session"], "one read, one write");
    // The start's audit event, identify's, the code's mail and the mail's audit event, in that one write.
    assert_eq!(effects, ["  effect Audit", "  effect Audit", "  effect Enqueue", "  effect Audit"]);
    let stored = c.cookie.clone().expect("a stored flow's cookie");
    assert!(!stored.starts_with("p.") && stored != started);
    let audit = env.store().await.list_audit(100).await.unwrap();
    let of_flow: Vec<&str> = audit
        .iter()
        .filter(|e| e.session_id.as_deref() == Some(r.body["data"]["id"].as_str().unwrap()))
        .map(|e| e.event.as_str())
        .collect();
    assert!(of_flow.contains(&"flow.started") && of_flow.contains(&"flow.identified"), "{of_flow:?}");

    // The started cookie again: its flow has a row now, so it starts nothing and mails nothing.
    let mut replay = server.client();
    replay.cookie = Some(started);
    let r = replay.identify("olga").await;
    assert_eq!((r.status, r.error_codes()), (400, vec!["CONCURRENT_ACCESS".to_owned()]), "{}", r.body);
    // A forged sealed cookie opens nothing.
    let mut forged = server.client();
    forged.cookie = Some("p.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA".into());
    let r = forged.check_otp("12345678").await;
    assert_eq!((r.status, r.error_codes()), (400, vec!["UNEXPECTED_CALL".to_owned()]), "{}", r.body);

    // The flow goes on with its stored cookie.
    let otp = wait_for_mails(&env.outbox(), "olga@example.com", 1).await[0].otp();
    c.check_otp(&otp).await.expect(200);
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert_eq!(mails_in(&env.outbox()).len(), 1, "one code mailed");
    server.stop().await;
    env.cleanup().await;
}

async fn a_started_flow_raced_on_two_nodes_runs_once(backend: Backend) {
    let env = TestEnv::new(backend).await;
    env.add_user("piet", Some("piet@example.com"), Some("Quiet-Harbor-Gull-58")).await;
    let config = env.config();
    let (node_a, node_b) = (env.start(config.clone()).await, env.start(config).await);
    let mut c = node_a.client();
    c.select("password-reset").await.expect(200);

    let barrier = Arc::new(Barrier::new(8));
    let calls = (0..8).map(|i| {
        let mut client = if i % 2 == 0 { c.clone() } else { c.on(&node_b) };
        let barrier = barrier.clone();
        tokio::spawn(async move {
            barrier.wait().await;
            client.identify("piet").await
        })
    });
    let answers: Vec<_> = join_all(calls).await.into_iter().map(Result::unwrap).collect();
    let won = answers.iter().filter(|r| r.status == 200).count();
    let refused = answers.iter().filter(|r| r.error_codes() == ["CONCURRENT_ACCESS"]).count();
    assert_eq!((won, refused), (1, 7), "{:?}", answers.iter().map(|r| &r.body).collect::<Vec<_>>());
    wait_for_mails(&env.outbox(), "piet@example.com", 1).await;
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    assert_eq!(mails_in(&env.outbox()).len(), 1, "one flow, one code");
    let started = env.store().await.list_audit(100).await.unwrap().iter().filter(|e| e.event == "flow.started").count();
    assert_eq!(started, 1, "the start is written once, with the winner");
    node_a.stop().await;
    node_b.stop().await;
    env.cleanup().await;
}

/// What a whole password reset costs the database, call by call: the numbers of the sizing table in
/// docs/benchmarks.md ("database work per flow").
async fn a_whole_reset_costs_this_much(backend: Backend) {
    let env = TestEnv::new(backend).await;
    env.add_user("rosa", Some("rosa@example.com"), Some("Quiet-Harbor-Gull-58")).await;
    let (store, server) = CountingStore::serve(&env, env.config()).await;
    store.take();
    let mut c = server.client();
    let mut calls = Vec::new();
    c.select("password-reset").await.expect(200);
    calls.push(("select", store.take_foreground()));
    c.identify("rosa").await.expect(200);
    calls.push(("identify", store.take_foreground()));
    let otp = wait_for_mails(&env.outbox(), "rosa@example.com", 1).await[0].otp();
    c.check_otp(&otp).await.expect(200);
    calls.push(("check", store.take_foreground()));
    c.set_password("Calm-Meadow-Otter-73").await.expect(200);
    calls.push(("set password", store.take_foreground()));
    let summary: Vec<(&str, Vec<String>)> = calls
        .into_iter()
        .map(|(call, c)| (call, c.into_iter().filter(|c| !c.starts_with("  effect")).collect()))
        .collect();
    let expected: Vec<(&str, Vec<String>)> = [
        ("select", vec![]),
        // One read, one transaction: the flow's row, the code's mail, three audit events.
        ("identify", vec!["find_user_by_login", "create_flow_session"]),
        // The lease (a write), the user, the attempt reserved (a write), the transaction.
        ("check", vec!["acquire_flow_session", "get_user", "reserve_attempt", "commit_flow_session"]),
        // The lease, the user (read once; the step's parts that load it again in the call use that read), the
        // transaction: password, sessions ended, counters reset, the notice's mail, audit. The hash runs between
        // the read and the commit.
        ("set password", vec!["acquire_flow_session", "get_user", "commit_flow_session"]),
    ]
    .into_iter()
    .map(|(call, c)| (call, c.into_iter().map(str::to_owned).collect()))
    .collect();
    assert_eq!(summary, expected, "{summary:#?}");
    server.stop().await;
    env.cleanup().await;
}

/// A login with the right password and no second factor, store call by store call: the user by name, the
/// counter's reservation, the hash, the user again (selection, after the hash) and once more (completion), the
/// second factors, and one write that resets the counter, clears the temporary lock and the unlock count, creates
/// the session and records the audit events. The reservation is not also given back in that write: the reset
/// deletes the counter.
async fn a_password_login_costs_this_much(backend: Backend) {
    let env = TestEnv::new(backend).await;
    env.add_user("quirin", Some("quirin@example.com"), Some("Quiet-Harbor-Gull-58")).await;
    let (store, server) = CountingStore::serve(&env, env.config()).await;
    store.take();

    let mut c = server.client();
    let r = c.login("quirin", "Quiet-Harbor-Gull-58").await;
    r.expect(200);
    assert_eq!(r.body["data"]["attributes"], serde_json::json!({}), "logged in: {}", r.body);
    let calls = store.take_foreground();
    let (effects, calls): (Vec<_>, Vec<_>) = calls.iter().partition(|c| c.starts_with("  effect"));
    assert_eq!(
        calls,
        ["find_user_by_login", "reserve_attempt", "enrolled", "create_flow_session"],
        "the user is read once (the selection and the completion of the same call use that read), the second \
         factors it could be offered in one statement"
    );
    let effects: Vec<&str> = effects.iter().map(|e| e.trim_start_matches("  effect ")).collect();
    assert_eq!(
        effects,
        ["Audit", "Audit", "ResetCounters", "SetTemporaryLock", "ResetUnlockCount", "CreateAuthSession", "Audit"],
        "one write, without giving back the reservation the reset deletes"
    );

    // The counter is gone, reservation and all: the next wrong passwords count from zero.
    let user = env.store().await.find_user_by_login("quirin").await.unwrap().unwrap();
    assert!(user.failed_attempts.is_empty(), "{:?}", user.failed_attempts);
    server.stop().await;
    env.cleanup().await;
}
