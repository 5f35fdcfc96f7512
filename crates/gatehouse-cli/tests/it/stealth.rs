//! Unknown, invalid and locked users cannot be told apart from real ones, and never get through.

use std::time::{Duration, Instant};

use gatehouse_core::clock::Clock as _;
use gatehouse_core::ports::Effect;

use crate::counting::CountingStore;
use crate::harness::{Backend, Client, TestEnv, mails_in};
use crate::on_both_backends;

on_both_backends!(
    restricted_users_look_like_real_ones,
    feedback_flags_report_each_restriction,
    public_calls_take_the_configured_time,
    equal_work_for_real_and_unknown_users
);

/// Status, headers and body shape of an answer.
type Observed = (u16, Vec<(String, String)>, serde_json::Value);

async fn restricted_users_look_like_real_ones(backend: Backend) {
    let env = TestEnv::new(backend).await;
    let server = env.start(env.config()).await;
    env.add_user("real", Some("real@example.com"), Some("Old-Cobalt-Lantern-1")).await;
    let locked = env.add_user("locked", Some("locked@example.com"), Some("Old-Cobalt-Lantern-1")).await;
    let invalid = env.add_user("invalid", Some("invalid@example.com"), Some("Old-Cobalt-Lantern-1")).await;
    env.add_user("nomail", None, Some("Old-Cobalt-Lantern-1")).await;
    let store = env.store().await;
    store
        .apply(&[Effect::Lock {
            user_id: locked.id.clone(),
            reason: "LockReason.InitiatedByAdmin".into(),
            at: 0,
            replace: true,
        }])
        .await
        .unwrap();
    // Validity ended an hour ago.
    let past = env.clock.now_ms() - 3_600_000;
    set_valid_until(&env, &invalid.id, past).await;

    let mut answers = Vec::new();
    let mut clients = Vec::new();
    for name in ["real", "ghost-who-does-not-exist", "locked", "invalid", "nomail"] {
        let mut c = server.client();
        c.select("password-reset").await.expect(200);
        let r = c.identify(name).await;
        answers.push((name, r.observable()));
        clients.push((name, c));
    }
    let reference = answers[0].1.clone();
    assert_eq!(reference.0, 200);
    for (name, seen) in &answers {
        assert_eq!(seen, &reference, "identify of `{name}` differs from a real user's");
    }

    // Only the real user got a mail.
    tokio::time::sleep(Duration::from_millis(400)).await;
    let mails = mails_in(&env.outbox());
    assert_eq!(mails.len(), 1, "{mails:?}");
    assert!(mails[0].to.contains("real@example.com"));
    assert_eq!(store.pending_outbox().await.unwrap(), 0);
    let real_otp = mails[0].otp();

    // Every restricted flow rejects every answer — even the real user's current code — exactly like a wrong
    // answer of a real user, and ends after the same number of tries.
    let mut real_wrong: Option<Vec<Observed>> = None;
    for (name, mut c) in clients {
        let mut seen = Vec::new();
        for attempt in 0..3 {
            let answer = if name == "real" {
                "00000000".to_owned()
            } else if attempt == 0 {
                real_otp.clone()
            } else {
                format!("1234567{attempt}")
            };
            if name == "real" && answer == real_otp {
                continue;
            }
            seen.push(c.check_otp(&answer).await.observable());
        }
        assert_eq!(seen.last().map(|s| s.0), Some(403), "{name}");
        match &real_wrong {
            None => real_wrong = Some(seen),
            Some(reference) => {
                assert_eq!(&seen, reference, "wrong-OTP answers for `{name}` differ")
            }
        }
        assert_no_progress(&mut c).await;
    }
    assert_eq!(mails_in(&env.outbox()).len(), 1, "nothing was sent to restricted users");
    let locked_now = env.user("locked").await;
    assert!(locked_now.failed_attempts.is_empty(), "answers in stealth mode are never evaluated");
    server.stop().await;
    env.cleanup().await;
}

async fn assert_no_progress(c: &mut Client) {
    let r = c.set_password("Brand-New-Kettle-77").await;
    assert_eq!(r.status, 400);
    assert_eq!(r.error_codes(), vec!["UNEXPECTED_CALL"]);
}

async fn set_valid_until(env: &TestEnv, user_id: &str, until: i64) {
    let effect = Effect::SetValidity { user_id: user_id.into(), valid_from: None, valid_until: Some(until), at: until };
    env.store().await.apply(&[effect]).await.unwrap();
}

async fn feedback_flags_report_each_restriction(backend: Backend) {
    let env = TestEnv::new(backend).await;
    let mut config = env.config();
    let gatehouse_core::config::Restrictions::PasswordReset(r) = &mut config.public_self_service.flows[0].restrictions
    else {
        panic!("the demo's first flow is password-reset")
    };
    r.nonexistent_user_feedback = true;
    r.invalid_user_feedback = true;
    r.locked_user_feedback = true;
    let server = env.start(config).await;
    let locked = env.add_user("locked", Some("locked@example.com"), None).await;
    let invalid = env.add_user("invalid", Some("invalid@example.com"), None).await;
    env.add_user("real", Some("real@example.com"), None).await;
    env.store()
        .await
        .apply(&[Effect::Lock {
            user_id: locked.id,
            reason: "LockReason.InitiatedByAdmin".into(),
            at: 0,
            replace: true,
        }])
        .await
        .unwrap();
    set_valid_until(&env, &invalid.id, env.clock.now_ms() - 1).await;

    let mut c = server.client();
    c.select("password-reset").await.expect(200);
    for (name, code) in [("nobody", "USER_NOT_FOUND"), ("invalid", "USER_INVALID"), ("locked", "USER_LOCKED")] {
        let r = c.identify(name).await;
        r.expect(400);
        assert_eq!(r.error_codes(), vec![code]);
        assert_eq!(r.body["meta"]["nextStep"], "USERNAME_REQUIRED", "the caller may try another name");
    }
    // The flow is still at identification and goes on for an allowed user.
    assert_eq!(c.identify("real").await.expect(200).next_step(), Some("EMAIL_OTP_REQUIRED"));
    server.stop().await;
    env.cleanup().await;
}

async fn public_calls_take_the_configured_time(backend: Backend) {
    let env = TestEnv::new(backend).await;
    let mut config = env.config();
    config.public_self_service.response_time_ms = 200;
    let server = env.start(config).await;
    env.add_user("real", Some("real@example.com"), Some("Old-Cobalt-Lantern-1")).await;
    for name in ["real", "nobody-at-all"] {
        let mut c = server.client();
        c.select("password-reset").await.expect(200);
        for call in ["identify", "wrong code"] {
            let (started, sent_at) = (Instant::now(), env.clock.now_ms());
            let r = if call == "identify" { c.identify(name).await } else { c.check_otp("00000000").await };
            let took = started.elapsed();
            assert!(took >= Duration::from_millis(200), "{name} {call}: {took:?}");
            let stamped = chrono::DateTime::parse_from_rfc3339(r.body["meta"]["timestamp"].as_str().unwrap())
                .unwrap()
                .timestamp_millis();
            assert!(stamped >= sent_at + 200, "{name} {call}: stamped {} ms after sending", stamped - sent_at);
        }
    }
    // A flow whose restrictions give feedback is not enumeration-safe anyway: not padded.
    let mut c = server.client();
    c.select("self-unlock").await.expect(200);
    let started = Instant::now();
    c.identify("nobody-at-all").await;
    assert!(started.elapsed() < Duration::from_millis(200), "{:?}", started.elapsed());
    server.stop().await;
    env.cleanup().await;
}

/// One call's status and the store calls and effects it made.
type Work = (u16, Vec<String>);

/// The store calls and effects of one call, for users that must look alike.
async fn work_of(store: &CountingStore, call: impl std::future::Future<Output = crate::harness::Resp>) -> Work {
    store.take();
    let r = call.await;
    // Let the delivery worker's polls pass: its calls are not part of the answer's work.
    (r.status, store.take_foreground())
}

async fn equal_work_for_real_and_unknown_users(backend: Backend) {
    let env = TestEnv::new(backend).await;
    let (store, server) = CountingStore::serve(&env, env.config()).await;
    env.add_user("real", Some("real@example.com"), Some("Old-Cobalt-Lantern-1")).await;
    env.add_user("nomail", None, Some("Old-Cobalt-Lantern-1")).await;

    let mut seen: Vec<(&str, Vec<Work>)> = Vec::new();
    for name in ["real", "nobody-at-all", "nomail"] {
        let mut c = server.client();
        c.select("password-reset").await.expect(200);
        let mut work = Vec::new();
        work.push(work_of(&store, c.identify(name)).await);
        work.push(work_of(&store, c.check_otp("00000000")).await);
        work.push(work_of(&store, c.resend()).await);
        seen.push((name, work));
    }
    // The real user's identify looks the user up (once: the step it advances to takes the same row), queues a
    // message and writes the flow's first row; the check reserves an attempt.
    let (identify, check) = (&seen[0].1[0].1, &seen[0].1[1].1);
    for call in ["find_user_by_login", "create_flow_session", "  effect Enqueue"] {
        assert!(identify.iter().any(|c| c == call), "{call} missing from {identify:#?}");
    }
    assert!(check.iter().any(|c| c == "reserve_attempt"), "{check:#?}");
    for (name, work) in &seen[1..] {
        assert_eq!(work, &seen[0].1, "{name} costs other work than a real user:\n{work:#?}\nreal:\n{:#?}", seen[0].1);
    }
    server.stop().await;
    env.cleanup().await;
}
