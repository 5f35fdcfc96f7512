//! The seed's four-call password reset, end to end over HTTP, document by document.

use gatehouse_core::config::PublicFlowFailures;
use gatehouse_core::crypto::{HashParams, Passwords};
use serde_json::json;

use crate::harness::{Backend, TestEnv, reset_until_otp, wait_for_mails};
use crate::on_both_backends;

on_both_backends!(
    seed_sequence_resets_the_password,
    expired_otp_and_resend,
    wrong_otps_end_the_flow_and_count,
    throttled_failures_block_the_code_for_a_while_and_lock_nobody
);

fn seed_document(next: Option<&str>) -> serde_json::Value {
    let attributes = next.map_or_else(|| json!({}), |n| json!({ "nextStep": n }));
    json!({
        "meta": { "type": "jsonapi.metadata.document", "timestamp": "<ts>" },
        "data": { "type": "public-self-service.session", "id": "<id>", "attributes": attributes }
    })
}

fn is_product_timestamp(s: &str) -> bool {
    // 2021-03-02T21:25:22.970+01:00
    let b = s.as_bytes();
    s.len() == 29 && b[4] == b'-' && b[10] == b'T' && b[19] == b'.' && (b[23] == b'+' || b[23] == b'-') && b[26] == b':'
}

/// Verifies a PHC string with an independent argon2 implementation (argon2-cffi).
fn python_argon2_verifies(phc: &str, password: &str) -> bool {
    let out = std::process::Command::new("python3")
        .args([
            "-c",
            "import sys\nfrom argon2 import PasswordHasher\ntry:\n    PasswordHasher().verify(sys.argv[1], sys.argv[2]); print('ok')\nexcept Exception as e:\n    print('no', type(e).__name__)",
            phc,
            password,
        ])
        .output()
        .expect("python3 is needed for the argon2 cross-check");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "argon2-cffi missing? run `pip install argon2-cffi`: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout.trim() == "ok"
}

async fn seed_sequence_resets_the_password(backend: Backend) {
    let env = TestEnv::new(backend).await;
    let server = env.start(env.config()).await;
    env.add_user("jdoe", Some("jdoe@example.com"), Some("Old-Cobalt-Lantern-1")).await;
    let mut c = server.client();

    let r1 = c.select("password-reset").await;
    r1.expect(200);
    assert_eq!(r1.shape(), seed_document(Some("USERNAME_REQUIRED")));
    assert!(is_product_timestamp(r1.body["meta"]["timestamp"].as_str().unwrap()), "{}", r1.body);
    let id = r1.body["data"]["id"].as_str().unwrap().to_owned();
    assert!(id.chars().all(|ch| ch.is_ascii_digit()), "{id}");
    let set_cookie = r1.headers.get("set-cookie").unwrap().to_str().unwrap().to_owned();
    assert!(set_cookie.contains("HttpOnly") && set_cookie.contains("SameSite=Strict"), "{set_cookie}");

    let r2 = c.identify("jdoe").await;
    r2.expect(200);
    assert_eq!(r2.shape(), seed_document(Some("EMAIL_OTP_REQUIRED")));
    assert_eq!(r2.body["data"]["id"], id.as_str());

    let mails = wait_for_mails(&env.outbox(), "jdoe@example.com", 1).await;
    let otp = mails[0].otp();
    assert_eq!(otp.len(), 8);
    assert!(otp.chars().all(|ch| ch.is_ascii_digit()));
    assert!(mails[0].raw.contains("From: Gatehouse <noreply@gatehouse.invalid>"));

    let r3 = c.check_otp(&otp).await;
    r3.expect(200);
    assert_eq!(r3.shape(), seed_document(Some("NEW_PASSWORD_REQUIRED")));

    // The seed's alternative answer: the old password again.
    let same = c.set_password("Old-Cobalt-Lantern-1").await;
    same.expect(400);
    assert_eq!(
        same.shape(),
        json!({
            "meta": { "type": "jsonapi.metadata.document", "timestamp": "<ts>", "nextStep": "NEW_PASSWORD_REQUIRED" },
            "errors": [{
                "code": "PASSWORD_POLICY_VIOLATED",
                "source": { "pointer": "/newPassword" },
                "meta": { "type": "jsonapi.metadata.validation.error", "detail": "SAME_AS_OLD" }
            }]
        })
    );

    let r4 = c.set_password("Fresh-Marble-Otter-42").await;
    r4.expect(200);
    assert_eq!(r4.shape(), seed_document(None));
    assert_eq!(r4.body["data"]["id"], id.as_str());

    // The new password verifies, with our hasher and with an independent argon2 implementation.
    let user = env.user("jdoe").await;
    let phc = user.password_hash.clone().unwrap();
    let ours = Passwords::new(HashParams { memory_kib: 1024, iterations: 1, parallelism: 1 }).unwrap();
    assert!(ours.verify("Fresh-Marble-Otter-42", &phc).unwrap().matches);
    assert!(!ours.verify("Old-Cobalt-Lantern-1", &phc).unwrap().matches);
    assert!(python_argon2_verifies(&phc, "Fresh-Marble-Otter-42"));
    assert!(!python_argon2_verifies(&phc, "Old-Cobalt-Lantern-1"));
    assert!(user.failed_attempts.is_empty(), "{:?}", user.failed_attempts);

    // The notification step told the user, and the flow is over.
    let mails = wait_for_mails(&env.outbox(), "jdoe@example.com", 2).await;
    assert_eq!(mails[1].subject, "Your password was changed");
    assert_eq!(c.set_password("Another-Marble-Otter-43").await.expect(400).error_codes(), vec!["UNEXPECTED_CALL"]);

    // The audit trail holds the story, and no secret.
    let audit = env.store().await.list_audit(100).await.unwrap();
    let events: Vec<&str> = audit.iter().map(|e| e.event.as_str()).collect();
    for expected in
        ["flow.started", "flow.identified", "otp.sent", "otp.verified", "password.changed", "flow.completed"]
    {
        assert!(events.contains(&expected), "missing {expected} in {events:?}");
    }
    let dump = serde_json::to_string(&audit).unwrap();
    assert!(!dump.contains(&otp) && !dump.contains("Fresh-Marble-Otter-42"));
    server.stop().await;
    env.cleanup().await;
}

async fn expired_otp_and_resend(backend: Backend) {
    let env = TestEnv::new(backend).await;
    let server = env.start(env.config()).await;
    env.add_user("mara", Some("mara@example.com"), Some("Old-Cobalt-Lantern-1")).await;
    let (mut c, first) = reset_until_otp(&server, &env.outbox(), "mara", "mara@example.com").await;

    env.clock.advance_ms(601_000);
    let r = c.check_otp(&first).await;
    r.expect(400);
    assert_eq!(r.error_codes(), vec!["EMAIL_OTP_EXPIRED"]);
    assert_eq!(r.body["meta"]["nextStep"], "EMAIL_OTP_REQUIRED");

    let r = c.resend().await;
    r.expect(200);
    assert_eq!(r.next_step(), Some("EMAIL_OTP_REQUIRED"));
    let mails = wait_for_mails(&env.outbox(), "mara@example.com", 2).await;
    let second = mails[1].otp();
    if second != first {
        // The replaced code no longer works (it counts as a wrong answer).
        assert_eq!(c.check_otp(&first).await.expect(400).error_codes(), vec!["EMAIL_OTP_WRONG"]);
    }
    c.check_otp(&second).await.expect(200);

    // Resends are limited (3 by default).
    let (mut c2, _) = reset_until_otp(&server, &env.outbox(), "mara", "mara@example.com").await;
    for _ in 0..3 {
        c2.resend().await.expect(200);
    }
    let r = c2.resend().await;
    r.expect(400);
    assert_eq!(r.error_codes(), vec!["RESEND_LIMIT_REACHED"]);
    server.stop().await;
    env.cleanup().await;
}

async fn wrong_otps_end_the_flow_and_count(backend: Backend) {
    let env = TestEnv::new(backend).await;
    let mut config = env.config();
    config.lockout.public_flow_failures = PublicFlowFailures::Lock;
    let server = env.start(config).await;
    env.add_user("ola", Some("ola@example.com"), Some("Old-Cobalt-Lantern-1")).await;
    let (mut c, otp) = reset_until_otp(&server, &env.outbox(), "ola", "ola@example.com").await;
    let wrong = if otp == "00000000" { "11111111" } else { "00000000" };

    for attempt in 1..=2 {
        let r = c.check_otp(wrong).await;
        r.expect(400);
        assert_eq!(r.error_codes(), vec!["EMAIL_OTP_WRONG"]);
        assert_eq!(r.body["errors"][0]["source"]["pointer"], "/otp");
        assert_eq!(r.body["meta"]["nextStep"], "EMAIL_OTP_REQUIRED");
        assert_eq!(env.user("ola").await.failed_attempts.get("EMAIL_OTP"), Some(&attempt));
    }
    let r = c.check_otp(wrong).await;
    r.expect(403);
    assert_eq!(r.error_codes(), vec!["EMAIL_OTP_WRONG"]);
    assert!(r.body["meta"].get("nextStep").is_none());
    assert!(r.headers.get("set-cookie").unwrap().to_str().unwrap().contains("Max-Age=0"));
    let user = env.user("ola").await;
    assert_eq!(user.failed_attempts.get("EMAIL_OTP"), Some(&3));
    assert!(!user.locked, "3 failures do not exceed the maximum of 3");

    // The flow is over: even the right code is refused now.
    let mut stale = server.client();
    stale.cookie = Some("not-a-session".into());
    assert_eq!(stale.check_otp(&otp).await.expect(400).error_codes(), vec!["UNEXPECTED_CALL"]);

    // One more failure in a new flow exceeds the maximum: the user is locked for that method.
    let (mut c2, otp2) = reset_until_otp(&server, &env.outbox(), "ola", "ola@example.com").await;
    let wrong2 = if otp2 == "00000000" { "11111111" } else { "00000000" };
    c2.check_otp(wrong2).await.expect(400);
    let user = env.user("ola").await;
    assert!(user.locked);
    assert_eq!(user.lock_reason.as_deref(), Some("LockReason.TooManyAuthAtts.EMAIL_OTP"));
    // Locked now: the right code of this flow is refused like any other.
    assert_eq!(c2.check_otp(&otp2).await.expect(400).error_codes(), vec!["EMAIL_OTP_WRONG"]);
    server.stop().await;
    env.cleanup().await;
}

/// Throttle mode (the demo's): public failures count on a counter of their own and, past the limit, block the
/// email code for a growing time; the account is never locked and login keeps its own counters.
async fn throttled_failures_block_the_code_for_a_while_and_lock_nobody(backend: Backend) {
    let env = TestEnv::new(backend).await;
    let config = env.config();
    assert_eq!(config.lockout.public_flow_failures, PublicFlowFailures::Throttle, "the demo throttles");
    let base_ms = i64::try_from(config.lockout.public_throttle.base_ms).unwrap();
    let server = env.start(config).await;
    env.add_user("tia", Some("tia@example.com"), Some("Old-Cobalt-Lantern-1")).await;
    let wrong_for = |otp: &str| if otp == "00000000" { "11111111" } else { "00000000" }.to_owned();

    // Three wrong codes end the first flow, within the limit of 3.
    let (mut c, otp) = reset_until_otp(&server, &env.outbox(), "tia", "tia@example.com").await;
    for _ in 0..2 {
        c.check_otp(&wrong_for(&otp)).await.expect(400);
    }
    c.check_otp(&wrong_for(&otp)).await.expect(403);
    // The fourth, in a second flow, passes the limit: the code is blocked, nobody is locked.
    let (mut c2, otp2) = reset_until_otp(&server, &env.outbox(), "tia", "tia@example.com").await;
    assert_eq!(c2.check_otp(&wrong_for(&otp2)).await.expect(400).error_codes(), vec!["EMAIL_OTP_WRONG"]);
    let user = env.user("tia").await;
    assert!(!user.locked, "{user:?}");
    assert_eq!(user.failed_attempts.get("EMAIL_OTP:PUBLIC"), Some(&4));
    assert_eq!(user.failed_attempts.get("EMAIL_OTP"), None, "the account's own counter is untouched");
    // While blocked, even the right code is refused, exactly as a wrong one.
    assert_eq!(c2.check_otp(&otp2).await.expect(400).error_codes(), vec!["EMAIL_OTP_WRONG"]);
    // Login is not affected.
    let mut login = server.client();
    login.login("tia", "Old-Cobalt-Lantern-1").await.expect(200);

    // After the block, the right code works and the flow's success clears the public counter.
    env.clock.advance_ms(base_ms + 1);
    let (mut c3, otp3) = reset_until_otp(&server, &env.outbox(), "tia", "tia@example.com").await;
    assert_eq!(c3.check_otp(&otp3).await.expect(200).next_step(), Some("NEW_PASSWORD_REQUIRED"));
    c3.set_password("New-Quartz-Harbor-7").await.expect(200);
    let user = env.user("tia").await;
    assert_eq!(user.failed_attempts.get("EMAIL_OTP:PUBLIC"), None, "{:?}", user.failed_attempts);
    server.stop().await;
    env.cleanup().await;
}
