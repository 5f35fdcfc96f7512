//! Login: password, lockout per method, temporary locking, enumeration protection, sessions, hash upgrades.

use gatehouse_core::clock::Clock as _;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::future::join_all;
use gatehouse_core::crypto::{HashParams, Passwords};
use gatehouse_core::ports::Effect;
use tokio::sync::Barrier;

use crate::harness::{Backend, Client, Resp, TestEnv, TestServer};
use crate::on_both_backends;

on_both_backends!(
    password_login_session_and_logout,
    wrong_passwords_lock_at_the_threshold,
    parallel_wrong_passwords_on_two_nodes_are_counted_exactly,
    temporary_locking_delays_the_next_try,
    enumeration_protection_answers_identically,
    imported_hashes_are_upgraded_on_use,
);

const PW: &str = "Old-Cobalt-Lantern-1";

async fn session(c: &mut Client) -> Resp {
    c.get("/rest/protected/session").await
}

async fn password_login_session_and_logout(backend: Backend) {
    let env = TestEnv::new(backend).await;
    let server = env.start(env.config()).await;
    env.add_user("ann", Some("ann@example.com"), Some(PW)).await;
    let store = env.store().await;
    let id = env.user("ann").await.id;
    store
        .apply(&[Effect::SetContextItem { user_id: id.clone(), key: "alias-test".into(), value: None, at: 0 }])
        .await
        .unwrap();

    let mut c = server.client();
    assert_eq!(session(&mut c).await.expect(401).error_codes(), vec!["NOT_AUTHENTICATED"]);
    let r = c.login("ann", "wrong-password").await;
    r.expect(400);
    assert_eq!(r.error_codes(), vec!["USERNAME_PASSWORD_WRONG"]);
    assert_eq!(r.body["meta"]["nextAuthStep"], "PASSWORD_REQUIRED");
    assert!(r.body["meta"].get("temporaryLockExpiry").is_none());
    assert_eq!(env.user("ann").await.failed_attempts.get("PASSWORD"), Some(&1));

    let flow_cookie = c.jar.get("gatehouse_auth").cloned();
    assert!(flow_cookie.is_some());
    let r = c.login("ann", PW).await;
    r.expect(200);
    assert_eq!(r.body["data"]["type"], "authentication.session");
    assert_eq!(r.body["data"]["attributes"], serde_json::json!({}));
    let session_cookie = c.jar.get("gatehouse_session").cloned().expect("a session cookie");
    assert_ne!(Some(session_cookie), flow_cookie, "the flow cookie is not reused");
    assert!(!c.jar.contains_key("gatehouse_auth"), "the flow cookie is cleared");
    assert!(env.user("ann").await.failed_attempts.is_empty(), "a successful login resets the counter");

    let s = session(&mut c).await;
    s.expect(200);
    assert_eq!(s.body["data"]["attributes"]["username"], "ann");
    assert_eq!(s.body["data"]["attributes"]["factors"], serde_json::json!(["PASSWORD"]));
    assert!(s.body["data"]["attributes"]["authenticatedAt"].is_string());

    // Another browser is not logged in; logout ends the session.
    assert_eq!(session(&mut server.client()).await.status, 401);
    assert_eq!(c.delete("/rest/protected/session").await.status, 204);
    assert_eq!(session(&mut c).await.status, 401);

    // A name that is no user (perhaps a password typed into the wrong field) is not kept in the audit trail.
    server.client().login("Secret-Typed-Into-Username-1", PW).await.expect(400);
    let audit = env.store().await.list_audit(200).await.unwrap();
    assert!(!serde_json::to_string(&audit).unwrap().contains("secret-typed-into-username-1"));
    assert!(audit.iter().any(|e| e.event == "login.failed"
        && e.outcome == "unknown_user"
        && e.username.is_none()
        && e.details["name_tag"].as_str().is_some_and(|t| t.len() == 16)));

    // The calls of later steps are unexpected without a flow.
    let r = c.post("/rest/public/authentication/otp/check/", Some(serde_json::json!({ "otp": "123456" }))).await;
    assert_eq!((r.status, r.error_codes()), (400, vec!["UNEXPECTED_CALL".to_owned()]));
    server.stop().await;
    env.cleanup().await;
}

async fn wrong_passwords_lock_at_the_threshold(backend: Backend) {
    let env = TestEnv::new(backend).await;
    let server = env.start(env.config()).await;
    env.add_user("ben", Some("ben@example.com"), Some(PW)).await;
    // The demo config allows 5 wrong passwords; the 6th locks.
    for attempt in 1..=5 {
        let r = server.client().login("ben", "nope").await;
        assert_eq!((r.status, r.error_codes()), (400, vec!["USERNAME_PASSWORD_WRONG".to_owned()]), "attempt {attempt}");
    }
    let r = server.client().login("ben", "nope").await;
    assert_eq!((r.status, r.error_codes()), (403, vec!["USER_LOCKED".to_owned()]));
    let user = env.user("ben").await;
    assert_eq!(user.lock_reason.as_deref(), Some("LockReason.TooManyAuthAtts.PASSWORD"));
    assert_eq!(user.failed_attempts.get("PASSWORD"), Some(&6));

    // The right password does not help a locked user, and is not evaluated.
    let r = server.client().login("ben", PW).await;
    assert_eq!((r.status, r.error_codes()), (403, vec!["USER_LOCKED".to_owned()]));
    assert_eq!(env.user("ben").await.failed_attempts.get("PASSWORD"), Some(&6));

    // The helpdesk unlocks (the same service as the admin API); the user gets in.
    let store = env.store().await;
    store.apply(&[Effect::Unlock { user_id: user.id.clone(), at: 1 }]).await.unwrap();
    let mut c = server.client();
    c.login("ben", PW).await.expect(200);
    session(&mut c).await.expect(200);
    server.stop().await;
    env.cleanup().await;
}

async fn parallel_wrong_passwords_on_two_nodes_are_counted_exactly(backend: Backend) {
    let env = TestEnv::new(backend).await;
    // Room for every request in the hashing queue: this test is about counting, not about shedding load.
    let mut config = env.config();
    config.hashing.queue_capacity = 1000;
    let node_a = env.start(config.clone()).await;
    let node_b = env.start(config).await;
    env.add_user("cleo", Some("cleo@example.com"), Some(PW)).await;
    let barrier = Arc::new(Barrier::new(200));
    let tasks = (0..200).map(|i| {
        let mut c = if i % 2 == 0 { node_a.client() } else { node_b.client() };
        let b = barrier.clone();
        tokio::spawn(async move {
            b.wait().await;
            c.login("cleo", &format!("wrong-{i}")).await
        })
    });
    let responses: Vec<Resp> = join_all(tasks).await.into_iter().map(Result::unwrap).collect();
    let wrong = responses.iter().filter(|r| r.status == 400 && r.error_codes() == ["USERNAME_PASSWORD_WRONG"]).count();
    let locked = responses.iter().filter(|r| r.status == 403 && r.error_codes() == ["USER_LOCKED"]).count();
    let statuses: Vec<u16> = responses.iter().map(|r| r.status).collect();
    assert_eq!((wrong, locked), (5, 195), "exactly max wrong answers, then locked: {statuses:?}");
    let user = env.user("cleo").await;
    assert!(user.locked);
    assert_eq!(user.failed_attempts.get("PASSWORD"), Some(&6), "exactly max + 1 passwords were evaluated");
    let audit = env.store().await.list_audit(1000).await.unwrap();
    assert_eq!(audit.iter().filter(|e| e.event == "user.locked").count(), 1);
    assert_eq!(node_b.client().login("cleo", PW).await.error_codes(), vec!["USER_LOCKED"]);
    node_a.stop().await;
    node_b.stop().await;
    env.cleanup().await;
}

async fn temporary_locking_delays_the_next_try(backend: Backend) {
    let env = TestEnv::new(backend).await;
    let mut config = env.config();
    config.authentication.temporary_locking.enabled = true;
    config.authentication.temporary_locking.base_ms = 2000;
    config.authentication.temporary_locking.factor = 2.0;
    let server = env.start(config).await;
    env.add_user("dina", None, Some(PW)).await;

    let r = server.client().login("dina", "nope").await;
    r.expect(400);
    let expiry = r.body["meta"]["temporaryLockExpiry"].as_str().expect("temporaryLockExpiry").to_owned();
    // While it lasts, even the right password is refused, and nothing is counted.
    let r = server.client().login("dina", PW).await;
    assert_eq!((r.status, r.error_codes()), (403, vec!["USER_TEMPORARILY_LOCKED".to_owned()]));
    assert_eq!(r.body["meta"]["temporaryLockExpiry"], expiry.as_str());
    assert_eq!(env.user("dina").await.failed_attempts.get("PASSWORD"), Some(&1));

    env.clock.advance_ms(2001);
    let r = server.client().login("dina", "nope").await;
    r.expect(400);
    let user = env.user("dina").await;
    let until = user.temp_locked_until.unwrap();
    // The second failure waits 2000 × 2^1 ms.
    assert!((until - gatehouse_core::clock::Clock::now_ms(env.clock.as_ref()) - 4000).abs() < 1000, "{until}");
    env.clock.advance_ms(4001);
    server.client().login("dina", PW).await.expect(200);
    assert!(env.user("dina").await.temp_locked_until.is_none(), "a successful login lifts it");
    server.stop().await;
    env.cleanup().await;
}

async fn enumeration_protection_answers_identically(backend: Backend) {
    let env = TestEnv::new(backend).await;
    let mut config = env.config();
    config.authentication.enumeration_protection = true;
    config.authentication.response_time_ms = 250;
    let server = env.start(config).await;
    env.add_user("eve", None, Some(PW)).await;
    let locked = env.add_user("fay", None, Some(PW)).await;
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

    let cases = [("ghost", "whatever"), ("eve", "wrong"), ("fay", PW)];
    let mut reference = None;
    let mut medians = Vec::new();
    for (user, password) in cases {
        let mut times = Vec::new();
        for _ in 0..7 {
            let started = Instant::now();
            let sent_at = env.clock.now_ms();
            let r = server.client().login(user, password).await;
            times.push(started.elapsed());
            assert_eq!(r.error_codes(), vec!["AUTHENTICATION_FAILED"], "{user}");
            // Stamped after the fixed wait, so the timestamp does not tell how long the work took.
            let stamped = chrono::DateTime::parse_from_rfc3339(r.body["meta"]["timestamp"].as_str().unwrap())
                .unwrap()
                .timestamp_millis();
            assert!(stamped >= sent_at + 250, "{user}: stamped {} ms after sending", stamped - sent_at);
            let seen = r.observable();
            match &reference {
                None => reference = Some(seen),
                Some(first) => assert_eq!(&seen, first, "answer for {user} differs"),
            }
        }
        times.sort();
        medians.push(times[times.len() / 2]);
    }
    // Unlock the wrong-password user's counter growth aside, every failure takes the fixed time.
    for m in &medians {
        assert!(*m >= Duration::from_millis(250) && *m < Duration::from_millis(450), "{medians:?}");
    }
    let spread = medians.iter().max().unwrap().saturating_sub(*medians.iter().min().unwrap());
    assert!(spread < Duration::from_millis(60), "medians differ too much: {medians:?}");
    // eve's wrong passwords were counted (7 > 5: locked now) and she gets the same answer with the right one.
    assert!(env.user("eve").await.locked);
    assert_eq!(server.client().login("eve", PW).await.error_codes(), vec!["AUTHENTICATION_FAILED"]);
    server.stop().await;
    env.cleanup().await;
}

async fn imported_hashes_are_upgraded_on_use(backend: Backend) {
    let env = TestEnv::new(backend).await;
    let server = env.start(env.config()).await;
    let user = env.add_user("gil", None, None).await;
    let bcrypt_hash = bcrypt::hash(PW, 4).unwrap();
    env.store()
        .await
        .apply(&[Effect::SetPassword { user_id: user.id.clone(), password_hash: bcrypt_hash.clone(), at: 1 }])
        .await
        .unwrap();
    server.client().login("gil", PW).await.expect(200);
    let upgraded = env.user("gil").await.password_hash.unwrap();
    assert!(upgraded.starts_with("$argon2id$v=19$m=1024,t=1,p=1$"), "{upgraded}");
    let fast = Passwords::new(HashParams { memory_kib: 1024, iterations: 1, parallelism: 1 }).unwrap();
    assert!(fast.verify(PW, &upgraded).unwrap().matches);
    // A wrong password changes nothing.
    server.client().login("gil", "nope").await.expect(400);
    assert_eq!(env.user("gil").await.password_hash.unwrap(), upgraded);
    server.client().login("gil", PW).await.expect(200);
    server.stop().await;
    env.cleanup().await;
}

/// Logins of different users run side by side: 8 parallel logins take far less than 8 sequential ones.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn parallel_logins_of_different_users_are_not_serialised() {
    let env = TestEnv::new(Backend::Sqlite).await;
    let mut config = env.config();
    config.hashing.memory_kib = 19456;
    config.hashing.iterations = 2;
    let server: TestServer = env.start(config).await;
    let hasher = Passwords::new(HashParams { memory_kib: 19456, iterations: 2, parallelism: 1 }).unwrap();
    let store = env.store().await;
    for i in 0..8 {
        let u = env.add_user(&format!("par{i}"), None, None).await;
        let h = hasher.hash(PW).unwrap();
        store.apply(&[Effect::SetPassword { user_id: u.id, password_hash: h, at: 1 }]).await.unwrap();
    }
    // Best of three runs each, so that a busy moment of the machine does not decide the outcome.
    let mut sequential = Duration::MAX;
    let mut parallel = Duration::MAX;
    for _ in 0..3 {
        let started = Instant::now();
        for i in 0..8 {
            server.client().login(&format!("par{i}"), PW).await.expect(200);
        }
        sequential = sequential.min(started.elapsed());
        let started = Instant::now();
        let tasks = (0..8).map(|i| {
            let mut c = server.client();
            tokio::spawn(async move { c.login(&format!("par{i}"), PW).await })
        });
        for r in join_all(tasks).await {
            r.unwrap().expect(200);
        }
        parallel = parallel.min(started.elapsed());
    }
    let cores = std::thread::available_parallelism().map_or(1, usize::from).min(8);
    // Bounded by cores: with c cores the parallel run needs about 1/c of the sequential time (generous bound).
    let bound = sequential.mul_f64(1.0 / cores as f64 + 0.35);
    assert!(parallel < bound, "parallel {parallel:?} vs sequential {sequential:?} on {cores} cores");
    server.stop().await;
}

/// An imported bcrypt hash costs its own time; an unknown name's dummy check is padded to it, so the time of a
/// wrong login does not tell an imported account from no account (the padding is a wait, measured here from
/// below only: a busy machine makes calls slower, never faster).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn unknown_names_take_as_long_as_imported_hashes() {
    let env = TestEnv::new(Backend::Sqlite).await;
    let server = env.start(env.config()).await;
    let user = env.add_user("imp", None, None).await;
    let bcrypt_hash = bcrypt::hash(PW, 11).unwrap();
    let effect = Effect::SetPassword { user_id: user.id.clone(), password_hash: bcrypt_hash, at: 1 };
    env.store().await.apply(&[effect]).await.unwrap();
    let timed = |name: &'static str| {
        let server = &server;
        async move {
            let started = Instant::now();
            server.client().login(name, "not-the-password").await.expect(400);
            started.elapsed()
        }
    };
    let mut imported = Duration::MAX;
    for _ in 0..3 {
        imported = imported.min(timed("imp").await);
    }
    assert!(imported >= Duration::from_millis(40), "bcrypt cost 11 takes a while: {imported:?}");
    for _ in 0..3 {
        let unknown = timed("nobody-by-this-name").await;
        assert!(unknown * 2 >= imported, "unknown {unknown:?} vs imported {imported:?}");
    }
    server.stop().await;
    env.cleanup().await;
}
