//! Self-unlock with the authenticator: identify, approve on the device, unlocked — within the maximum number
//! of unlocks, only for the allowed lock reasons, with the feedback the restrictions configure.

use std::process::Command;
use std::sync::Arc;

use futures::future::join_all;
use gatehouse_core::authenticator::{DeviceKey, approval_message, encode};
use gatehouse_core::clock::Clock as _;
use gatehouse_core::ports::Effect;
use tokio::sync::Barrier;

use crate::harness::{Backend, Client, Resp, TestEnv, TestServer};
use crate::on_both_backends;

on_both_backends!(
    self_unlock_end_to_end,
    restrictions_and_feedback,
    max_unlocks_hold_under_parallel_attempts,
    denials_count_when_the_device_decides,
    denials_in_public_flows_throttle_and_lock_nobody
);

const PW: &str = "Old-Cobalt-Lantern-1";

/// A device enrolled for `username` through an activation made by the CLI.
pub(crate) async fn enroll(env: &TestEnv, server: &TestServer, username: &str) -> (DeviceKey, String) {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_gatehouse"));
    cmd.args(["user", "activate-authenticator", username])
        .env_remove("GATEHOUSE_CONFIG")
        .env("GATEHOUSE_DATABASE_URL", &env.db_url)
        .env("GATEHOUSE_DATA_DIR", env.dir.path())
        .env("GATEHOUSE_SERVER__SECRET_KEY", &env.key);
    if let Some(schema) = &env.schema {
        cmd.env("GATEHOUSE_STORAGE__SCHEMA", schema);
    }
    let out = cmd.output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let code = String::from_utf8(out.stdout).unwrap().lines().nth(1).unwrap().replace('-', "");
    let key = DeviceKey::generate(&gatehouse_core::random::SystemRandom);
    let body = serde_json::json!({ "code": code, "publicKey": key.public_key(), "offlineKey": encode(&[9u8; 32]), "displayName": "phone" });
    let r = server.client().post("/rest/device/activate", Some(body)).await;
    r.expect(201);
    let id = r.body["data"]["attributes"]["deviceId"].as_str().unwrap().to_owned();
    (key, id)
}

/// Approves every pending request of `username` with the device (as the app would, number matched).
pub(crate) async fn approve_all(
    env: &TestEnv,
    server: &TestServer,
    username: &str,
    key: &DeviceKey,
    device_id: &str,
) -> usize {
    let user = env.user(username).await;
    let pending = env.store().await.pending_approvals(&user.id, env.clock.now_ms()).await.unwrap();
    let mut c = server.client();
    for a in &pending {
        let sig = key.sign(&approval_message(&a.id, &a.nonce, "approve", a.number));
        let body =
            serde_json::json!({ "deviceId": device_id, "decision": "approve", "number": a.number, "signature": sig });
        c.post(&format!("/rest/device/approvals/{}/decision", a.id), Some(body)).await.expect(200);
    }
    pending.len()
}

pub(crate) async fn lock_by_wrong_passwords(server: &TestServer, username: &str) {
    for _ in 0..6 {
        server.client().login(username, "wrong").await;
    }
}

async fn start_unlock(server: &TestServer, username: &str) -> (Client, Resp) {
    let mut c = server.client();
    c.select("self-unlock").await.expect(200);
    let r = c.identify(username).await;
    (c, r)
}

async fn poll(c: &mut Client) -> Resp {
    c.post("/rest/public/self-service/app-2fa/status/poll/", None).await
}

fn fast_polls(env: &TestEnv) -> gatehouse_core::config::Config {
    let mut config = env.config();
    config.authenticator.poll_wait_seconds = 2;
    config
}

async fn self_unlock_end_to_end(backend: Backend) {
    let env = TestEnv::new(backend).await;
    let server = env.start(fast_polls(&env)).await;
    env.add_user("pia", None, Some(PW)).await;
    let (key, device) = enroll(&env, &server, "pia").await;
    lock_by_wrong_passwords(&server, "pia").await;
    assert_eq!(server.client().login("pia", PW).await.error_codes(), vec!["USER_LOCKED"]);

    let (mut c, r) = start_unlock(&server, "pia").await;
    r.expect(200);
    assert_eq!(r.next_step(), Some("APP_2FA_POLLING_OR_OFFLINE_REQUIRED"));
    assert!(r.body["data"]["attributes"]["number"].is_u64());
    // Nothing decided yet: the poll answers "still waiting" after its wait.
    assert_eq!(poll(&mut c).await.next_step(), Some("APP_2FA_POLLING_OR_OFFLINE_REQUIRED"));
    assert_eq!(approve_all(&env, &server, "pia", &key, &device).await, 1);
    let r = poll(&mut c).await;
    r.expect(200);
    assert_eq!(r.body["data"]["attributes"], serde_json::json!({}), "the flow is complete");
    let user = env.user("pia").await;
    assert!(!user.locked);
    assert_eq!(user.unlock_count, 1);
    assert!(!user.failed_attempts.contains_key("PASSWORD"), "the password counter is reset");

    // The next login (password + push) resets the unlock count.
    let mut login = server.client();
    assert_eq!(login.login("pia", PW).await.next_auth_step(), Some("APP_2FA_POLLING_OR_OFFLINE_REQUIRED"));
    approve_all(&env, &server, "pia", &key, &device).await;
    login.post("/rest/public/authentication/app-2fa/status/poll/", None).await.expect(200);
    assert_eq!(env.user("pia").await.unlock_count, 0);
    server.stop().await;
    env.cleanup().await;
}

async fn restrictions_and_feedback(backend: Backend) {
    let env = TestEnv::new(backend).await;
    let mut config = fast_polls(&env);
    config.public_self_service.max_number_of_unlocks = Some(1);
    let server = env.start(config).await;
    let admin_locked = env.add_user("quin", None, Some(PW)).await;
    let invalid = env.add_user("ruth", None, Some(PW)).await;
    env.add_user("sven", None, Some(PW)).await;
    let store = env.store().await;
    store
        .apply(&[
            Effect::Lock {
                user_id: admin_locked.id.clone(),
                reason: "LockReason.InitiatedByAdmin".into(),
                at: 1,
                replace: true,
            },
            Effect::SetValidity { user_id: invalid.id, valid_from: None, valid_until: Some(1), at: 1 },
        ])
        .await
        .unwrap();

    // The demo flow reports every restriction (the product requires it for a flow without identity verification).
    for (name, code) in [("nobody", "USER_NOT_FOUND"), ("ruth", "USER_INVALID"), ("quin", "USER_LOCKED")] {
        let (_, r) = start_unlock(&server, name).await;
        assert_eq!((r.status, r.error_codes()), (400, vec![code.to_owned()]), "{name}");
    }
    assert_eq!(env.store().await.pending_approvals(&admin_locked.id, env.clock.now_ms()).await.unwrap().len(), 0);

    // After the maximum number of unlocks only the helpdesk can help.
    let (key, device) = enroll(&env, &server, "sven").await;
    lock_by_wrong_passwords(&server, "sven").await;
    let (mut c, _) = start_unlock(&server, "sven").await;
    approve_all(&env, &server, "sven", &key, &device).await;
    poll(&mut c).await.expect(200);
    lock_by_wrong_passwords(&server, "sven").await;
    let (_, r) = start_unlock(&server, "sven").await;
    assert_eq!((r.status, r.error_codes()), (400, vec!["TOO_MANY_UNLOCKS".to_owned()]));
    let sven = env.user("sven").await;
    store.apply(&[Effect::Unlock { user_id: sven.id, at: 2 }]).await.unwrap();
    let mut login = server.client();
    assert_eq!(login.login("sven", PW).await.next_auth_step(), Some("APP_2FA_POLLING_OR_OFFLINE_REQUIRED"));

    // With the feedback flags off, refused users go on in stealth mode: same answer, no request is created,
    // and the flow can never be approved.
    let mut quiet = fast_polls(&env);
    let gatehouse_core::config::Restrictions::SelfUnlock(r) = &mut quiet.public_self_service.flows[1].restrictions
    else {
        panic!("the demo's second flow is self-unlock")
    };
    r.nonexistent_user_feedback = false;
    r.locked_user_feedback = false;
    r.invalid_user_feedback = false;
    r.too_many_unlocks_feedback = false;
    let stealthy = env.start(quiet).await;
    let (_, real) = start_unlock(&stealthy, "sven").await;
    let (mut ghost, unknown) = start_unlock(&stealthy, "nobody").await;
    assert_eq!((unknown.status, unknown.next_step()), (real.status, real.next_step()));
    // Where the account must not show, the selection offers every configured factor to everyone.
    assert_eq!(unknown.next_step(), Some("SELECTION_REQUIRED"));
    let options = ghost.post("/rest/public/self-service/selection/options/retrieve", None).await;
    assert_eq!(options.body["data"]["attributes"]["options"], serde_json::json!(["APP_2FA", "OATH_OTP", "MTAN"]));
    let r = ghost.post("/rest/public/self-service/selection/options/APP_2FA/select", None).await;
    assert_eq!(r.next_step(), Some("APP_2FA_POLLING_OR_OFFLINE_REQUIRED"));
    let r = ghost.post("/rest/public/self-service/app-2fa/offline/challenge/", None).await;
    assert!(r.body["data"]["attributes"]["offlineChallenge"].is_string());
    let r = ghost
        .post("/rest/public/self-service/app-2fa/offline/check/", Some(serde_json::json!({ "otp": "12345678" })))
        .await;
    assert_eq!(r.error_codes(), vec!["APP_2FA_CODE_WRONG"]);
    env.clock.advance_ms(121_000);
    assert_eq!(poll(&mut ghost).await.error_codes(), vec!["APP_2FA_EXPIRED"]);
    stealthy.stop().await;
    server.stop().await;
    env.cleanup().await;
}

async fn max_unlocks_hold_under_parallel_attempts(backend: Backend) {
    let env = TestEnv::new(backend).await;
    let mut config = fast_polls(&env);
    config.public_self_service.max_number_of_unlocks = Some(1);
    let node_a = env.start(config.clone()).await;
    let node_b = env.start(config).await;
    env.add_user("tove", None, Some(PW)).await;
    let (key, device) = enroll(&env, &node_a, "tove").await;
    lock_by_wrong_passwords(&node_a, "tove").await;

    let mut flows = Vec::new();
    for i in 0..50 {
        let (c, r) = start_unlock(if i % 2 == 0 { &node_a } else { &node_b }, "tove").await;
        r.expect(200);
        flows.push(c);
    }
    assert_eq!(approve_all(&env, &node_a, "tove", &key, &device).await, 50);
    let barrier = Arc::new(Barrier::new(flows.len()));
    let tasks = flows.into_iter().map(|mut c| {
        let b = barrier.clone();
        tokio::spawn(async move {
            b.wait().await;
            poll(&mut c).await
        })
    });
    let responses: Vec<Resp> = join_all(tasks).await.into_iter().map(Result::unwrap).collect();
    assert!(
        responses.iter().all(|r| r.status == 200 || r.status == 403),
        "{:?}",
        responses.iter().map(|r| r.status).collect::<Vec<_>>()
    );
    let user = env.user("tove").await;
    assert!(!user.locked);
    assert_eq!(user.unlock_count, 1, "one lock, one unlock, however many flows raced for it");
    let audit = env.store().await.list_audit(2000).await.unwrap();
    assert_eq!(audit.iter().filter(|e| e.event == "user.self_unlock" && e.outcome == "ok").count(), 1);

    // Locked again: the maximum is reached, self-unlock is refused; the helpdesk unlocks.
    lock_by_wrong_passwords(&node_b, "tove").await;
    assert_eq!(start_unlock(&node_b, "tove").await.1.error_codes(), vec!["TOO_MANY_UNLOCKS"]);
    env.store().await.apply(&[Effect::Unlock { user_id: user.id, at: 3 }]).await.unwrap();
    assert!(!env.user("tove").await.locked);
    node_a.stop().await;
    node_b.stop().await;
    env.cleanup().await;
}

/// Answers every pending request of `username` with `decision`, the number offset by `number_offset` (a
/// wrong number when not 0); returns the statuses the device API gave.
pub(crate) async fn decide_all(
    env: &TestEnv,
    server: &TestServer,
    username: &str,
    (key, device_id): (&DeviceKey, &str),
    decision: &str,
    number_offset: u32,
) -> Vec<u16> {
    let user = env.user(username).await;
    let pending = env.store().await.pending_approvals(&user.id, env.clock.now_ms()).await.unwrap();
    let mut c = server.client();
    let mut statuses = Vec::new();
    for a in &pending {
        let number = a.number + number_offset;
        let sig = key.sign(&approval_message(&a.id, &a.nonce, decision, number));
        let body =
            serde_json::json!({ "deviceId": device_id, "decision": decision, "number": number, "signature": sig });
        statuses.push(c.post(&format!("/rest/device/approvals/{}/decision", a.id), Some(body)).await.status);
    }
    statuses
}

async fn denials_count_when_the_device_decides(backend: Backend) {
    let env = TestEnv::new(backend).await;
    let server = env.start(fast_polls(&env)).await;
    env.add_user("otto", None, Some(PW)).await;
    let (key, device) = enroll(&env, &server, "otto").await;

    // Someone with the password pushes again and again and never polls: every denial counts at once.
    for n in 1..=3 {
        let r = server.client().login("otto", PW).await;
        assert_eq!(r.next_auth_step(), Some("APP_2FA_POLLING_OR_OFFLINE_REQUIRED"), "{}", r.body);
        let decision = if n == 2 { "approve" } else { "deny" };
        let offset = if n == 2 { 1 } else { 0 };
        let statuses = decide_all(&env, &server, "otto", (&key, &device), decision, offset).await;
        // The second time the user approves blindly with a wrong number: a denial too.
        assert_eq!(statuses, vec![if n == 2 { 400 } else { 200 }]);
        assert_eq!(env.user("otto").await.failed_attempts.get("APP_2FA"), Some(&n), "counted without a poll");
    }
    // The fourth denial passes the limit (3): the user is locked at the moment the device says no.
    let mut c = server.client();
    c.login("otto", PW).await;
    decide_all(&env, &server, "otto", (&key, &device), "deny", 0).await;
    let otto = env.user("otto").await;
    assert!(otto.locked);
    assert_eq!(otto.lock_reason.as_deref(), Some("LockReason.TooManyAuthAtts.APP_2FA"));
    // The browser's poll reports it, without counting again.
    let r = poll_login(&mut c).await;
    assert_eq!((r.status, r.error_codes()), (403, vec!["USER_LOCKED".to_owned()]), "{}", r.body);
    assert_eq!(env.user("otto").await.failed_attempts.get("APP_2FA"), Some(&4));
    server.stop().await;
    env.cleanup().await;
}

async fn poll_login(c: &mut Client) -> Resp {
    c.post("/rest/public/authentication/app-2fa/status/poll/", None).await
}

/// In throttle mode (the demo's) a denial asked by a public flow counts on the public counter at once; past the
/// limit the push is blocked for a while and nobody is locked by it.
async fn denials_in_public_flows_throttle_and_lock_nobody(backend: Backend) {
    let env = TestEnv::new(backend).await;
    let server = env.start(fast_polls(&env)).await;
    env.add_user("ulla", None, Some(PW)).await;
    let (key, device) = enroll(&env, &server, "ulla").await;
    lock_by_wrong_passwords(&server, "ulla").await;
    for n in 1..=4 {
        let (_c, r) = start_unlock(&server, "ulla").await;
        assert_eq!(r.next_step(), Some("APP_2FA_POLLING_OR_OFFLINE_REQUIRED"), "{}", r.body);
        assert_eq!(decide_all(&env, &server, "ulla", (&key, &device), "deny", 0).await, vec![200]);
        let user = env.user("ulla").await;
        assert_eq!(user.failed_attempts.get("APP_2FA:PUBLIC"), Some(&n), "counted without a poll");
        assert_eq!(user.failed_attempts.get("APP_2FA"), None, "login's counter is untouched");
        assert_eq!(user.lock_reason.as_deref(), Some("LockReason.TooManyAuthAtts.PASSWORD"), "no new lock reason");
    }
    let audit = env.store().await.list_audit(1000).await.unwrap();
    assert_eq!(
        audit
            .iter()
            .filter(|e| e.event == "user.locked" && e.details["reason"] != "LockReason.TooManyAuthAtts.PASSWORD")
            .count(),
        0
    );
    server.stop().await;
    env.cleanup().await;
}
