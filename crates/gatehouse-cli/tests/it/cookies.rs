//! Cookie and session hygiene: a flow cookie planted before the user identifies is worthless afterwards (the
//! cookie is renewed at every step that identifies or authenticates), Secure cookies carry the `__Host-`
//! prefix, a password change or reset ends the other sessions, and a login re-checks the lock at the end.

use gatehouse_core::clock::Clock as _;
use serde_json::json;

use crate::harness::{Backend, TestEnv};
use crate::on_both_backends;
use crate::second_factor::{PW, enroll_totp, oathtool};

on_both_backends!(
    a_planted_login_cookie_is_worthless,
    secure_cookies_are_host_only,
    password_change_and_reset_end_other_sessions,
    a_lock_during_the_second_factor_holds,
    sensitive_changes_need_a_recent_proof,
    security_headers_on_every_answer
);

async fn a_planted_login_cookie_is_worthless(backend: Backend) {
    let env = TestEnv::new(backend).await;
    let server = env.start(env.config()).await;
    env.add_user("vera", None, Some(PW)).await;
    let mut setup = server.client();
    setup.login("vera", PW).await.expect(200);
    let secret = enroll_totp(&env, &mut setup).await;

    // The attacker opens a login and plants its cookie in the victim's browser.
    let mut attacker = server.client();
    let r = attacker.post("/rest/public/authentication/default-application/access/", None).await;
    assert_eq!(r.status, 401);
    let planted = attacker.jar.get("gatehouse_auth").cloned().expect("a flow cookie");
    let mut victim = server.client();
    victim.jar.insert("gatehouse_auth".into(), planted.clone());

    // The victim's password check continues that flow — and renews its cookie.
    let r = victim.login("vera", PW).await;
    assert_eq!(r.next_auth_step(), Some("OTP_REQUIRED"), "{}", r.body);
    let renewed = victim.jar.get("gatehouse_auth").cloned().expect("a renewed cookie");
    assert_ne!(renewed, planted, "a new flow token once the user is known");

    // The planted cookie opens nothing: the attacker cannot answer the victim's second factor.
    env.clock.advance_ms(30_000);
    let code = oathtool(&secret, env.clock.now_ms());
    let r = attacker.post("/rest/public/authentication/otp/check/", Some(json!({ "otp": code }))).await;
    assert_eq!((r.status, r.error_codes()), (400, vec!["UNEXPECTED_CALL".to_owned()]), "{}", r.body);
    let r = victim.post("/rest/public/authentication/otp/check/", Some(json!({ "otp": code }))).await;
    r.expect(200);
    let session = victim.jar.get("gatehouse_session").cloned().expect("a session cookie");
    assert_ne!(session, renewed);
    assert_eq!(attacker.get("/rest/protected/session").await.status, 401);
    victim.get("/rest/protected/session").await.expect(200);

    // Self-service flows renew theirs at identification too.
    let mut c = server.client();
    let r = c.select("password-reset").await;
    let before = r.headers.get("set-cookie").unwrap().to_str().unwrap().to_owned();
    let r = c.identify("vera").await;
    let after = r.headers.get("set-cookie").map(|v| v.to_str().unwrap().to_owned()).expect("renewed at identify");
    assert_ne!(before.split(';').next(), after.split(';').next());
    server.stop().await;
    env.cleanup().await;
}

async fn secure_cookies_are_host_only(backend: Backend) {
    let env = TestEnv::new(backend).await;
    let mut config = env.config();
    config.server.secure_cookies = true;
    let server = env.start(config).await;
    env.add_user("wim", Some("wim@example.com"), Some(PW)).await;

    let mut c = server.client();
    let r = c.select("password-reset").await;
    let cookie = r.headers.get("set-cookie").unwrap().to_str().unwrap().to_owned();
    assert!(cookie.starts_with("__Host-gatehouse_flow="), "{cookie}");
    for attribute in ["HttpOnly", "SameSite=Strict", "Secure", "Path=/"] {
        assert!(cookie.contains(attribute), "{attribute} missing: {cookie}");
    }
    assert!(!cookie.contains("Domain"), "{cookie}");
    // The flow goes on with the prefixed cookie; a cookie without the prefix is not taken.
    c.identify("wim").await.expect(200);
    let mut plain = server.client();
    plain.jar.insert("gatehouse_flow".into(), "whatever".into());
    let r = plain.check_otp("12345678").await;
    assert_eq!(r.error_codes(), vec!["UNEXPECTED_CALL".to_owned()], "{}", r.body);

    let r = server.client().login("wim", PW).await;
    let session = r.headers.get_all("set-cookie").iter().map(|v| v.to_str().unwrap().to_owned()).collect::<Vec<_>>();
    assert!(session.iter().any(|c| c.starts_with("__Host-gatehouse_session=") && c.contains("Secure")), "{session:?}");
    server.stop().await;
    env.cleanup().await;
}

async fn password_change_and_reset_end_other_sessions(backend: Backend) {
    let env = TestEnv::new(backend).await;
    let server = env.start(env.config()).await;
    env.add_user("ruth", Some("ruth@example.com"), Some(PW)).await;
    let (mut here, mut elsewhere) = (server.client(), server.client());
    here.login("ruth", PW).await.expect(200);
    elsewhere.login("ruth", PW).await.expect(200);

    let change = json!({ "oldPassword": PW, "newPassword": "Quiet-Harbor-Gull-58" });
    here.post("/rest/protected/self-service/password/change/", Some(change)).await.expect(200);
    assert_eq!(elsewhere.get("/rest/protected/session").await.status, 401, "the other session ended");
    here.get("/rest/protected/session").await.expect(200);

    // A reset ends every session, the one that asked too.
    let (mut c, otp) = crate::harness::reset_until_otp(&server, &env.outbox(), "ruth", "ruth@example.com").await;
    c.check_otp(&otp).await.expect(200);
    c.set_password("Calm-Meadow-Otter-73").await.expect(200);
    assert_eq!(here.get("/rest/protected/session").await.status, 401);
    server.stop().await;
    env.cleanup().await;
}

async fn a_lock_during_the_second_factor_holds(backend: Backend) {
    let env = TestEnv::new(backend).await;
    let server = env.start(env.config()).await;
    env.add_user("sven", None, Some(PW)).await;
    let mut setup = server.client();
    setup.login("sven", PW).await.expect(200);
    let secret = enroll_totp(&env, &mut setup).await;

    let mut c = server.client();
    assert_eq!(c.login("sven", PW).await.next_auth_step(), Some("OTP_REQUIRED"));
    // The helpdesk locks him while the code is asked.
    let user = env.user("sven").await;
    let lock = gatehouse_core::ports::Effect::Lock {
        user_id: user.id,
        reason: "LockReason.InitiatedByAdmin".into(),
        at: 1,
        replace: true,
    };
    env.store().await.apply(&[lock]).await.unwrap();
    env.clock.advance_ms(30_000);
    let r = c
        .post("/rest/public/authentication/otp/check/", Some(json!({ "otp": oathtool(&secret, env.clock.now_ms()) })))
        .await;
    assert_eq!((r.status, r.error_codes()), (403, vec!["USER_LOCKED".to_owned()]), "{}", r.body);
    assert!(!c.jar.contains_key("gatehouse_session"));
    server.stop().await;
    env.cleanup().await;
}

async fn sensitive_changes_need_a_recent_proof(backend: Backend) {
    let env = TestEnv::new(backend).await;
    let server = env.start(env.config()).await;
    env.add_user("tilda", None, Some(PW)).await;
    let mut c = server.client();
    c.login("tilda", PW).await.expect(200);
    let phone = |p: &str| json!({ "phone": p });
    c.post("/rest/protected/self-service/phone/", Some(phone("+41790000700"))).await.expect(200);

    // Six minutes later (step_up_seconds = 300) a stolen session cannot redirect the SMS codes.
    env.clock.advance_ms(360_000);
    let sensitive: [(&str, Option<serde_json::Value>); 3] = [
        ("/rest/protected/self-service/phone/", Some(phone("+41790000701"))),
        ("/rest/protected/self-service/app-2fa/activation/", None),
        ("/rest/protected/self-service/secret-questions/answers/", Some(json!({ "answers": [] }))),
    ];
    for (path, body) in &sensitive {
        let r = c.post(path, body.clone()).await;
        assert_eq!(
            (r.status, r.error_codes()),
            (403, vec!["REAUTHENTICATION_REQUIRED".to_owned()]),
            "{path}: {}",
            r.body
        );
    }
    let r = c.delete("/rest/protected/self-service/totp").await;
    assert_eq!(r.error_codes(), vec!["REAUTHENTICATION_REQUIRED".to_owned()], "{}", r.body);
    assert_eq!(env.user("tilda").await.context.get("phone").map(String::as_str), Some("+41790000700"));

    // The password again: a wrong one counts like a login's, the right one opens the window.
    let r = c.post("/rest/protected/self-service/reauthenticate/", Some(json!({ "password": "nope" }))).await;
    assert_eq!((r.status, r.error_codes()), (400, vec!["PASSWORD_WRONG".to_owned()]), "{}", r.body);
    assert_eq!(env.user("tilda").await.failed_attempts.get("PASSWORD"), Some(&1));
    c.post("/rest/protected/self-service/reauthenticate/", Some(json!({ "password": PW }))).await.expect(200);
    let failures = env.user("tilda").await.failed_attempts.get("PASSWORD").copied().unwrap_or(0);
    assert_eq!(failures, 0, "a proven password clears its failures, as a login does");
    c.post("/rest/protected/self-service/phone/", Some(phone("+41790000701"))).await.expect(200);
    server.stop().await;
    env.cleanup().await;
}

async fn security_headers_on_every_answer(backend: Backend) {
    let env = TestEnv::new(backend).await;
    let mut config = env.config();
    config.server.trust_forwarded_proto = true;
    let server = env.start(config).await;
    let mut c = server.client();
    for r in [
        c.select("password-reset").await,
        c.get("/rest/protected/session").await,
        c.get("/rest/no/such/thing").await,
        c.get("/health/live").await,
    ] {
        assert_eq!(r.headers.get("x-content-type-options").unwrap(), "nosniff");
        assert_eq!(r.headers.get("referrer-policy").unwrap(), "no-referrer");
        assert_eq!(r.headers.get("cache-control").unwrap(), "no-store");
        assert!(r.headers.get("strict-transport-security").is_none(), "plain HTTP: no HSTS");
    }
    // Behind a TLS proxy that says so: HSTS.
    let req = c.http.get(format!("{}/health/live", server.base)).header("x-forwarded-proto", "https");
    let r = c.send(req).await;
    assert_eq!(r.headers.get("strict-transport-security").unwrap(), "max-age=31536000");
    server.stop().await;
    env.cleanup().await;
}
