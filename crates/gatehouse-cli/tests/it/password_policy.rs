//! Each password policy violation has its code, pointer and detail, and leaves the old password valid.

use gatehouse_core::crypto::{HashParams, Passwords};

use crate::harness::{Backend, TestEnv, reset_until_otp};
use crate::on_both_backends;

on_both_backends!(every_violation_is_reported_and_nothing_changes);

async fn every_violation_is_reported_and_nothing_changes(backend: Backend) {
    let env = TestEnv::new(backend).await;
    let server = env.start(env.config()).await;
    env.add_user("vera.lindqvist", Some("vera@example.com"), Some("Old-Cobalt-Lantern-1")).await;
    let (mut c, otp) = reset_until_otp(&server, &env.outbox(), "vera.lindqvist", "vera@example.com").await;
    c.check_otp(&otp).await.expect(200);
    let before = env.user("vera.lindqvist").await.password_hash;

    let cases: [(&str, &[&str]); 7] = [
        ("x7#Q", &["TOO_SHORT", "TOO_GUESSABLE"]),
        ("", &["TOO_SHORT"]),
        (&"Aa1!".repeat(40), &["TOO_LONG"]),
        ("Vera.Lindqvist-Kayak-77", &["CONTAINS_USERNAME"]),
        ("password123", &["TOO_GUESSABLE"]),
        ("vera@example.com", &["TOO_GUESSABLE"]),
        ("Old-Cobalt-Lantern-1", &["SAME_AS_OLD"]),
    ];
    for (password, details) in cases {
        let r = c.set_password(password).await;
        r.expect(400);
        assert_eq!(r.body["meta"]["nextStep"], "NEW_PASSWORD_REQUIRED", "{password}");
        let errors = r.body["errors"].as_array().unwrap();
        let seen: Vec<&str> = errors.iter().map(|e| e["meta"]["detail"].as_str().unwrap()).collect();
        assert_eq!(seen, details, "for {password:?}");
        for e in errors {
            assert_eq!(e["code"], "PASSWORD_POLICY_VIOLATED");
            assert_eq!(e["source"]["pointer"], "/newPassword");
            assert_eq!(e["meta"]["type"], "jsonapi.metadata.validation.error");
        }
    }
    // Nothing changed and nothing was counted: the old password still verifies.
    let user = env.user("vera.lindqvist").await;
    assert_eq!(user.password_hash, before);
    assert!(user.failed_attempts.is_empty());
    let ours = Passwords::new(HashParams { memory_kib: 1024, iterations: 1, parallelism: 1 }).unwrap();
    assert!(ours.verify("Old-Cobalt-Lantern-1", user.password_hash.as_deref().unwrap()).unwrap().matches);
    // And the flow still accepts a good password.
    c.set_password("Quiet-Harbor-Gull-58").await.expect(200);
    server.stop().await;
    env.cleanup().await;
}
