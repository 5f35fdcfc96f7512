//! Second factors: TOTP (enrolled over the protected API, codes from oathtool), SMS codes (file outbox and an
//! HTTP gateway), factor selection, and the protected self-service calls around them.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::future::join_all;
use gatehouse_core::clock::{Clock as _, format_timestamp};
use gatehouse_core::config::SmsTransport;
use gatehouse_core::ports::Effect;
use tokio::sync::Barrier;

use crate::harness::{Backend, Client, Resp, TestEnv, TestServer};
use crate::on_both_backends;

on_both_backends!(
    totp_enrollment_login_and_replay,
    parallel_totp_guesses_lock_exactly,
    sms_code_login_with_resend,
    sms_through_an_http_gateway,
    factor_selection_and_protected_calls,
);

pub(crate) const PW: &str = "Old-Cobalt-Lantern-1";

/// A TOTP code from oathtool, an independent implementation, for the time `at` (ms).
pub(crate) fn oathtool(secret: &str, at: i64) -> String {
    let when = format_timestamp(at).replace('T', " ");
    let when = format!("{} UTC", &when[..19]);
    let out = std::process::Command::new("oathtool")
        .args(["--totp", "-b", "--now", &when, secret])
        .output()
        .expect("oathtool is needed (apt-get install oathtool)");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap().trim().to_owned()
}

async fn logged_in(server: &TestServer, user: &str) -> Client {
    let mut c = server.client();
    let r = c.login(user, PW).await;
    assert_eq!(r.body["data"]["attributes"], serde_json::json!({}), "{}", r.body);
    c
}

/// Enrolls TOTP for a logged-in user and returns the base32 secret.
pub(crate) async fn enroll_totp(env: &TestEnv, c: &mut Client) -> String {
    let r = c.post("/rest/protected/self-service/totp/enroll/", None).await;
    r.expect(200);
    let attrs = &r.body["data"]["attributes"];
    let secret = attrs["secret"].as_str().unwrap().to_owned();
    assert!(attrs["otpauthUri"].as_str().unwrap().starts_with("otpauth://totp/Gatehouse:"));
    assert!(attrs["qrCode"].as_str().unwrap().contains("<svg"));
    let code = oathtool(&secret, env.clock.now_ms());
    c.post("/rest/protected/self-service/totp/confirm/", Some(serde_json::json!({ "otp": code }))).await.expect(200);
    secret
}

async fn totp_enrollment_login_and_replay(backend: Backend) {
    let env = TestEnv::new(backend).await;
    let server = env.start(env.config()).await;
    env.add_user("hana", None, Some(PW)).await;
    let mut c = logged_in(&server, "hana").await;
    let wrong =
        c.post("/rest/protected/self-service/totp/confirm/", Some(serde_json::json!({ "otp": "123456" }))).await;
    assert_eq!(wrong.error_codes(), vec!["NO_PENDING_ENROLLMENT"]);
    let secret = enroll_totp(&env, &mut c).await;
    // The secret is sealed at rest.
    let stored = env.store().await.get_totp(&env.user("hana").await.id).await.unwrap().unwrap();
    assert!(stored.confirmed && !stored.sealed_secret.contains(&secret));
    let again = c.post("/rest/protected/self-service/totp/enroll/", None).await;
    assert_eq!((again.status, again.error_codes()), (409, vec!["TOTP_ALREADY_ENROLLED".to_owned()]));

    // Login now asks for the code; the next time step's code (within the allowed skew) is used.
    let mut c = server.client();
    let r = c.login("hana", PW).await;
    r.expect(200);
    assert_eq!(r.next_auth_step(), Some("OTP_REQUIRED"));
    assert!(!c.jar.contains_key("gatehouse_session"), "no session before the second factor");
    let code = oathtool(&secret, env.clock.now_ms() + 30_000);
    let wrong_code = if code == "000000" { "111111" } else { "000000" };
    let r = c.post("/rest/public/authentication/otp/check/", Some(serde_json::json!({ "otp": wrong_code }))).await;
    assert_eq!((r.status, r.error_codes()), (400, vec!["OTP_WRONG".to_owned()]));
    assert_eq!(r.body["meta"]["nextAuthStep"], "OTP_REQUIRED");
    c.post("/rest/public/authentication/otp/check/", Some(serde_json::json!({ "otp": code }))).await.expect(200);
    let s = c.get("/rest/protected/session").await;
    assert_eq!(s.body["data"]["attributes"]["factors"], serde_json::json!(["PASSWORD", "OTP"]));
    assert!(env.user("hana").await.failed_attempts.is_empty());

    // The same code again: refused.
    let mut c2 = server.client();
    c2.login("hana", PW).await.expect(200);
    let r = c2.post("/rest/public/authentication/otp/check/", Some(serde_json::json!({ "otp": code }))).await;
    assert_eq!((r.status, r.error_codes()), (400, vec!["OTP_WRONG".to_owned()]));

    // Removing the authenticator brings back password-only login.
    assert_eq!(c.delete("/rest/protected/self-service/totp").await.status, 204);
    let r = server.client().login("hana", PW).await;
    assert_eq!(r.body["data"]["attributes"], serde_json::json!({}));
    server.stop().await;
    env.cleanup().await;
}

async fn parallel_totp_guesses_lock_exactly(backend: Backend) {
    let env = TestEnv::new(backend).await;
    let mut config = env.config();
    config.hashing.queue_capacity = 1000;
    let node_a = env.start(config.clone()).await;
    let node_b = env.start(config).await;
    env.add_user("ivo", None, Some(PW)).await;
    let mut c = logged_in(&node_a, "ivo").await;
    let secret = enroll_totp(&env, &mut c).await;
    let now = env.clock.now_ms();
    let valid: Vec<String> = [-30_000, 0, 30_000].iter().map(|d| oathtool(&secret, now + d)).collect();
    let wrong = (0..1_000_000).map(|n| format!("{n:06}")).find(|c| !valid.contains(c)).unwrap();

    let mut flows = Vec::new();
    for i in 0..200 {
        let mut c = if i % 2 == 0 { node_a.client() } else { node_b.client() };
        assert_eq!(c.login("ivo", PW).await.next_auth_step(), Some("OTP_REQUIRED"));
        flows.push(c);
    }
    let barrier = Arc::new(Barrier::new(flows.len()));
    let tasks = flows.into_iter().map(|mut c| {
        let (b, otp) = (barrier.clone(), wrong.clone());
        tokio::spawn(async move {
            b.wait().await;
            c.post("/rest/public/authentication/otp/check/", Some(serde_json::json!({ "otp": otp }))).await
        })
    });
    let responses: Vec<Resp> = join_all(tasks).await.into_iter().map(Result::unwrap).collect();
    let wrong_answers = responses.iter().filter(|r| r.error_codes() == ["OTP_WRONG"]).count();
    let locked = responses.iter().filter(|r| r.status == 403 && r.error_codes() == ["USER_LOCKED"]).count();
    assert_eq!((wrong_answers, locked), (3, 197));
    let user = env.user("ivo").await;
    assert_eq!(user.failed_attempts.get("OTP"), Some(&4));
    assert_eq!(user.lock_reason.as_deref(), Some("LockReason.TooManyAuthAtts.OTP"));
    assert_eq!(node_b.client().login("ivo", PW).await.error_codes(), vec!["USER_LOCKED"]);
    node_a.stop().await;
    node_b.stop().await;
    env.cleanup().await;
}

/// Waits for the `n`-th SMS to `to` in the file outbox and returns its code.
pub(crate) async fn sms_code(env: &TestEnv, to: &str, n: usize) -> String {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let mut found: Vec<serde_json::Value> = std::fs::read_dir(env.outbox())
            .map(|d| {
                let mut paths: Vec<_> = d.filter_map(Result::ok).map(|e| e.path()).collect();
                paths.sort();
                paths
                    .into_iter()
                    .filter(|p| p.to_string_lossy().ends_with(".sms.json"))
                    .map(|p| serde_json::from_str(&std::fs::read_to_string(p).unwrap()).unwrap())
                    .collect()
            })
            .unwrap_or_default();
        found.retain(|m: &serde_json::Value| m["to"] == to);
        if found.len() >= n {
            return code_in(found[n - 1]["text"].as_str().unwrap());
        }
        assert!(Instant::now() < deadline, "no SMS #{n} to {to}");
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

fn code_in(text: &str) -> String {
    text.split(|c: char| !c.is_ascii_digit())
        .find(|w| w.len() == 6)
        .unwrap_or_else(|| panic!("no code in {text}"))
        .to_owned()
}

pub(crate) async fn add_phone_user(env: &TestEnv, name: &str, phone: &str) {
    let user = env.add_user(name, None, Some(PW)).await;
    let effect = Effect::SetContextItem { user_id: user.id, key: "phone".into(), value: Some(phone.into()), at: 1 };
    env.store().await.apply(&[effect]).await.unwrap();
}

async fn sms_code_login_with_resend(backend: Backend) {
    let env = TestEnv::new(backend).await;
    let server = env.start(env.config()).await;
    add_phone_user(&env, "jon", "+41790000001").await;
    let mut c = server.client();
    assert_eq!(c.login("jon", PW).await.next_auth_step(), Some("MTAN_OTP_REQUIRED"));
    let first = sms_code(&env, "+41790000001", 1).await;
    let r = c.post("/rest/public/authentication/mtan/otp/resend/", None).await;
    assert_eq!(r.next_auth_step(), Some("MTAN_OTP_REQUIRED"));
    let second = sms_code(&env, "+41790000001", 2).await;
    if first != second {
        let r = c.post("/rest/public/authentication/mtan/otp/check", Some(serde_json::json!({ "otp": first }))).await;
        assert_eq!((r.status, r.error_codes()), (400, vec!["MTAN_OTP_WRONG".to_owned()]), "the replaced code is dead");
    }
    c.post("/rest/public/authentication/mtan/otp/check", Some(serde_json::json!({ "otp": second }))).await.expect(200);
    let s = c.get("/rest/protected/session").await;
    assert_eq!(s.body["data"]["attributes"]["factors"], serde_json::json!(["PASSWORD", "MTAN"]));

    // max_wrong_checks = 2: three wrong answers to one code end the flow.
    let mut c = server.client();
    c.login("jon", PW).await.expect(200);
    let code = sms_code(&env, "+41790000001", 3).await;
    let wrong = if code == "000000" { "111111" } else { "000000" };
    for _ in 0..2 {
        let r = c.post("/rest/public/authentication/mtan/otp/check", Some(serde_json::json!({ "otp": wrong }))).await;
        assert_eq!((r.status, r.error_codes()), (400, vec!["MTAN_OTP_WRONG".to_owned()]));
    }
    let r = c.post("/rest/public/authentication/mtan/otp/check", Some(serde_json::json!({ "otp": wrong }))).await;
    assert_eq!((r.status, r.error_codes()), (403, vec!["MTAN_OTP_WRONG".to_owned()]));
    assert_eq!(env.user("jon").await.failed_attempts.get("MTAN"), Some(&3));
    server.stop().await;
    env.cleanup().await;
}

/// What the stub gateway received: the Authorization header and the JSON body of each request.
type Received = Arc<Mutex<Vec<(Option<String>, serde_json::Value)>>>;

/// A stand-in SMS gateway on loopback: records what it receives, refuses the first request with 503.
async fn gateway_stub() -> (String, Received) {
    let seen: Received = Arc::default();
    let calls = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let (seen2, calls2) = (seen.clone(), calls.clone());
    let app = axum::Router::new().route(
        "/send",
        axum::routing::post(move |headers: axum::http::HeaderMap, body: axum::Json<serde_json::Value>| {
            let (seen, calls) = (seen2.clone(), calls2.clone());
            async move {
                if calls.fetch_add(1, std::sync::atomic::Ordering::SeqCst) == 0 {
                    return axum::http::StatusCode::SERVICE_UNAVAILABLE;
                }
                let auth = headers.get("authorization").and_then(|v| v.to_str().ok()).map(str::to_owned);
                seen.lock().unwrap().push((auth, body.0));
                axum::http::StatusCode::ACCEPTED
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/send", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    (url, seen)
}

async fn sms_through_an_http_gateway(backend: Backend) {
    let env = TestEnv::new(backend).await;
    let (url, seen) = gateway_stub().await;
    let mut config = env.config();
    config.messaging.sms.transport = SmsTransport::Http;
    config.messaging.sms.url = Some(url);
    config.messaging.sms.bearer_token = Some("gateway-token".into());
    config.validate().unwrap();
    let server = env.start(config).await;
    add_phone_user(&env, "kai", "+41790000002").await;
    let mut c = server.client();
    assert_eq!(c.login("kai", PW).await.next_auth_step(), Some("MTAN_OTP_REQUIRED"));
    let deadline = Instant::now() + Duration::from_secs(10);
    let message = loop {
        if let Some(m) = seen.lock().unwrap().first().cloned() {
            break m;
        }
        assert!(Instant::now() < deadline, "the gateway got nothing (the first try is refused, the retry must come)");
        tokio::time::sleep(Duration::from_millis(25)).await;
    };
    assert_eq!(message.0.as_deref(), Some("Bearer gateway-token"));
    assert_eq!(message.1["to"], "+41790000002");
    let code = code_in(message.1["text"].as_str().unwrap());
    c.post("/rest/public/authentication/mtan/otp/check", Some(serde_json::json!({ "otp": code }))).await.expect(200);
    server.stop().await;
    env.cleanup().await;
}

async fn factor_selection_and_protected_calls(backend: Backend) {
    let env = TestEnv::new(backend).await;
    let server = env.start(env.config()).await;
    add_phone_user(&env, "lea", "+41790000003").await;
    // With only a phone, SMS is asked at once; enroll TOTP from the session that gives.
    let mut c = server.client();
    c.login("lea", PW).await.expect(200);
    let code = sms_code(&env, "+41790000003", 1).await;
    c.post("/rest/public/authentication/mtan/otp/check", Some(serde_json::json!({ "otp": code }))).await.expect(200);
    enroll_totp(&env, &mut c).await;

    let mut s = server.client();
    assert_eq!(s.login("lea", PW).await.next_auth_step(), Some("SELECTION_REQUIRED"));
    let r = s.post("/rest/public/authentication/selection/options/retrieve", None).await;
    assert_eq!(r.body["data"]["attributes"]["options"], serde_json::json!(["OATH_OTP", "MTAN"]));
    let r = s.post("/rest/public/authentication/selection/options/FIDO/select", None).await;
    assert_eq!((r.status, r.error_codes()), (400, vec!["OPTION_NOT_AVAILABLE".to_owned()]));
    let r = s.post("/rest/public/authentication/selection/options/MTAN/select", None).await;
    assert_eq!(r.next_auth_step(), Some("MTAN_OTP_REQUIRED"));
    let code = sms_code(&env, "+41790000003", 2).await;
    s.post("/rest/public/authentication/mtan/otp/check", Some(serde_json::json!({ "otp": code }))).await.expect(200);

    // Protected calls need the session.
    let mut anonymous = server.client();
    for (path, body) in [
        ("/rest/protected/self-service/phone/", serde_json::json!({ "phone": "+41790000009" })),
        ("/rest/protected/self-service/totp/enroll/", serde_json::json!({})),
        ("/rest/protected/self-service/password/change/", serde_json::json!({ "oldPassword": PW, "newPassword": "x" })),
    ] {
        assert_eq!(anonymous.post(path, Some(body)).await.status, 401, "{path}");
    }
    let r = s.post("/rest/protected/self-service/phone/", Some(serde_json::json!({ "phone": "12" }))).await;
    assert_eq!((r.status, r.error_codes()), (400, vec!["INVALID_REQUEST".to_owned()]));
    s.post("/rest/protected/self-service/phone/", Some(serde_json::json!({ "phone": "+41 79 000 00 04" })))
        .await
        .expect(200);
    assert_eq!(env.user("lea").await.context.get("phone").map(String::as_str), Some("+41790000004"));

    // Change password: policy, then success; the new password logs in.
    let change = |old: &str, new: &str| serde_json::json!({ "oldPassword": old, "newPassword": new });
    let r = s.post("/rest/protected/self-service/password/change/", Some(change(PW, PW))).await;
    assert_eq!(r.error_codes(), vec!["PASSWORD_POLICY_VIOLATED"]);
    s.post("/rest/protected/self-service/password/change/", Some(change(PW, "Quiet-Harbor-Gull-58"))).await.expect(200);
    assert_eq!(server.client().login("lea", "Quiet-Harbor-Gull-58").await.status, 200);

    // Wrong old passwords count; past the maximum (3) the user is locked and the session ends.
    for _ in 0..3 {
        let r =
            s.post("/rest/protected/self-service/password/change/", Some(change("nope", "Other-Harbor-Gull-59"))).await;
        assert_eq!((r.status, r.error_codes()), (400, vec!["OLD_PASSWORD_WRONG".to_owned()]));
    }
    let r = s.post("/rest/protected/self-service/password/change/", Some(change("nope", "Other-Harbor-Gull-59"))).await;
    assert_eq!((r.status, r.error_codes()), (403, vec!["USER_LOCKED".to_owned()]));
    let user = env.user("lea").await;
    assert_eq!(user.lock_reason.as_deref(), Some("LockReason.MaxWrongOldPassword"));
    assert_eq!(s.get("/rest/protected/session").await.status, 401);
    assert_eq!(c.get("/rest/protected/session").await.status, 401, "a lock ends every session");
    server.stop().await;
    env.cleanup().await;
}
