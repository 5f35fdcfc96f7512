//! No secret reaches the audit trail or the logs: a run through login, a wrong password, a password typed into
//! the name field, a reset by email code, an email link and the admin API, with every log line captured; then
//! every secret it used is searched for in the captured logs and in every audit row.

use std::io::Write;
use std::sync::{Arc, Mutex};

use serde_json::json;

use crate::admin_api::{admin, create_token};
use crate::harness::{Backend, TestEnv, reset_until_otp, wait_for_mails};

#[derive(Clone, Default)]
struct Capture(Arc<Mutex<Vec<u8>>>);

impl Write for Capture {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Cookie values a response set (name=value), for the list of secrets.
fn cookie_values(r: &crate::harness::Resp) -> Vec<String> {
    r.headers
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok()?.split(';').next()?.split_once('=').map(|(_, v)| v.to_owned()))
        .filter(|v| v.len() >= 16)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn no_secret_reaches_the_audit_trail_or_the_logs() {
    // Each test runs in a process of its own (nextest), so this subscriber sees this test's server only.
    let capture = Capture::default();
    let writer = capture.clone();
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::new("debug"))
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .init();

    let env = TestEnv::new(Backend::Sqlite).await;
    let server = env.start(env.config()).await;
    const PW: &str = "Old-Cobalt-Lantern-1";
    env.add_user("sam", Some("sam@example.com"), Some(PW)).await;
    let mut secrets: Vec<String> = vec![PW.into()];

    // Login: right, wrong, and a password typed into the name field.
    let r = server.client().login("sam", PW).await;
    r.expect(200);
    secrets.extend(cookie_values(&r));
    let wrong = "Wrong-Secret-Password-77";
    secrets.push(wrong.into());
    server.client().login("sam", wrong).await.expect(400);
    let typed = "Typed-Into-Name-Secret-3";
    secrets.push(typed.to_lowercase());
    server.client().login(typed, PW).await.expect(400);

    // A reset by email code, with a new password.
    let (mut c, otp) = reset_until_otp(&server, &env.outbox(), "sam", "sam@example.com").await;
    secrets.push(otp.clone());
    let r = c.check_otp(&otp).await;
    r.expect(200);
    secrets.extend(cookie_values(&r));
    let fresh = "Fresh-Secret-Harbor-88";
    secrets.push(fresh.into());
    c.set_password(fresh).await.expect(200);

    // An email link sent by an administrator through the admin API, and used.
    let token = create_token(&env, "helpdesk");
    secrets.push(token.clone());
    let mut api = server.client();
    admin(&mut api, reqwest::Method::POST, "/rest/admin/users/sam/reset-link", &token, Some(json!({})))
        .await
        .expect(202);
    let mails = wait_for_mails(&env.outbox(), "sam@example.com", 3).await;
    let mail = mails.into_iter().find(|m| m.body.contains("token=")).unwrap();
    let link_token = mail.body.split("token=").nth(1).unwrap().split_whitespace().next().unwrap().to_owned();
    secrets.push(link_token.clone());
    let mut follow = server.client();
    follow.select("password-reset-continue").await.expect(200);
    let r = follow
        .post("/rest/public/self-service/flow-continuation/token/check/", Some(json!({ "token": link_token })))
        .await;
    r.expect(200);
    let last = "Last-Secret-Meadow-51";
    secrets.push(last.into());
    follow.set_password(last).await.expect(200);
    server.stop().await;

    let audit = serde_json::to_string(&env.store().await.list_audit(1000).await.unwrap()).unwrap();
    let logs = String::from_utf8_lossy(&capture.0.lock().unwrap()).into_owned();
    assert!(audit.contains("password.changed") || audit.contains("password"), "the trail has events: {audit}");
    assert!(logs.contains("gatehouse listening"), "the logs were captured");
    for secret in &secrets {
        assert!(!audit.contains(secret.as_str()), "`{secret}` is in the audit trail");
        assert!(!logs.contains(secret.as_str()), "`{secret}` is in the logs");
    }
    env.cleanup().await;
}
