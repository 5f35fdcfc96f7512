//! Bad input gets a clear 4xx JSON error, never a 5xx, and changes nothing.

use crate::harness::{Backend, Client, Resp, TestEnv, reset_until_otp};
use crate::on_both_backends;

on_both_backends!(malformed_requests_are_refused_without_effect, expired_sessions_end_the_flow);

const OTP_PATH: &str = "/rest/public/self-service/verification/email/otp/check/";

pub(crate) async fn raw(
    c: &mut Client,
    method: reqwest::Method,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> Resp {
    let mut req = c.http.request(method, format!("{}{path}", c.base)).body(body.to_owned());
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    c.send(req).await
}

#[track_caller]
pub(crate) fn assert_json_error(r: &Resp, status: u16, code: &str) {
    assert_eq!(r.status, status, "{}", r.body);
    assert_eq!(r.headers.get("content-type").and_then(|v| v.to_str().ok()), Some("application/json"), "{}", r.body);
    assert_eq!(r.error_codes(), vec![code.to_owned()], "{}", r.body);
    assert!(r.body["meta"]["timestamp"].is_string());
}

async fn malformed_requests_are_refused_without_effect(backend: Backend) {
    let env = TestEnv::new(backend).await;
    let server = env.start(env.config()).await;
    env.add_user("tia", Some("tia@example.com"), Some("Old-Cobalt-Lantern-1")).await;
    let (mut c, otp) = reset_until_otp(&server, &env.outbox(), "tia", "tia@example.com").await;
    let json = [("content-type", "application/json"), ("x-same-domain", "1")];
    let post = reqwest::Method::POST;

    let cases: Vec<(Resp, u16, &str)> = vec![
        (raw(&mut c, post.clone(), OTP_PATH, &json, "{\"otp\": ").await, 400, "INVALID_JSON"),
        (raw(&mut c, post.clone(), OTP_PATH, &json, "{\"otp\": \"1\"} trailing").await, 400, "INVALID_JSON"),
        (raw(&mut c, post.clone(), OTP_PATH, &json, "{\"otp\": 12345678}").await, 400, "INVALID_REQUEST"),
        (raw(&mut c, post.clone(), OTP_PATH, &json, "{\"otp\": null}").await, 400, "INVALID_REQUEST"),
        (raw(&mut c, post.clone(), OTP_PATH, &json, "{}").await, 400, "INVALID_REQUEST"),
        (raw(&mut c, post.clone(), OTP_PATH, &json, "[\"12345678\"]").await, 400, "INVALID_REQUEST"),
        (raw(&mut c, post.clone(), OTP_PATH, &json, "{\"otp\": \"1\", \"extra\": true}").await, 400, "INVALID_REQUEST"),
        (
            raw(&mut c, post.clone(), OTP_PATH, &json, &format!("{{\"otp\": \"{}\"}}", "9".repeat(65))).await,
            400,
            "INVALID_REQUEST",
        ),
        (
            raw(&mut c, post.clone(), OTP_PATH, &json, &format!("{{\"otp\": \"{}\"}}", "9".repeat(70_000))).await,
            413,
            "PAYLOAD_TOO_LARGE",
        ),
        (
            raw(&mut c, post.clone(), OTP_PATH, &[("x-same-domain", "1")], "{\"otp\": \"1\"}").await,
            415,
            "UNSUPPORTED_MEDIA_TYPE",
        ),
        (
            raw(
                &mut c,
                post.clone(),
                OTP_PATH,
                &[("x-same-domain", "1"), ("content-type", "text/plain")],
                "{\"otp\": \"1\"}",
            )
            .await,
            415,
            "UNSUPPORTED_MEDIA_TYPE",
        ),
        (
            raw(&mut c, post.clone(), OTP_PATH, &[("content-type", "application/json")], "{\"otp\": \"1\"}").await,
            403,
            "CSRF_HEADER_MISSING",
        ),
        (
            raw(
                &mut c,
                post.clone(),
                OTP_PATH,
                &[("content-type", "application/json"), ("x-same-domain", "")],
                "{\"otp\": \"1\"}",
            )
            .await,
            403,
            "CSRF_HEADER_MISSING",
        ),
        (raw(&mut c, reqwest::Method::GET, OTP_PATH, &json, "").await, 405, "METHOD_NOT_ALLOWED"),
        (raw(&mut c, post.clone(), "/rest/public/self-service/no/such/call", &json, "{}").await, 404, "NOT_FOUND"),
        (
            raw(&mut c, post.clone(), "/rest/public/self-service/username/identify/", &json, "{\"username\": \"\"}")
                .await,
            400,
            "INVALID_REQUEST",
        ),
        (
            raw(
                &mut c,
                post.clone(),
                "/rest/public/self-service/username/identify/",
                &json,
                "{\"username\": \"jdoe\"}",
            )
            .await,
            400,
            "UNEXPECTED_CALL",
        ),
        (
            raw(
                &mut c,
                post.clone(),
                "/rest/public/self-service/password/set",
                &json,
                "{\"newPassword\": \"Fresh-Marble-Otter-42\"}",
            )
            .await,
            400,
            "UNEXPECTED_CALL",
        ),
    ];
    for (r, status, code) in &cases {
        assert_json_error(r, *status, code);
    }
    let pointer = &cases[2].0.body["errors"][0]["source"]["pointer"];
    assert_eq!(pointer, "/otp");

    // A flow that does not exist, and a call without any flow.
    let mut other = server.client();
    assert_json_error(&other.select("no-such-flow").await, 404, "FLOW_NOT_FOUND");
    assert!(other.cookie.is_none());
    assert_json_error(&other.check_otp("12345678").await, 400, "UNEXPECTED_CALL");
    other.cookie = Some("forged-token".into());
    assert_json_error(&other.check_otp("12345678").await, 400, "UNEXPECTED_CALL");

    // None of it changed the flow: no attempt was counted, and the right code still works.
    assert!(env.user("tia").await.failed_attempts.is_empty());
    assert_eq!(c.check_otp(&otp).await.expect(200).next_step(), Some("NEW_PASSWORD_REQUIRED"));
    server.stop().await;
    env.cleanup().await;
}

async fn expired_sessions_end_the_flow(backend: Backend) {
    let env = TestEnv::new(backend).await;
    let server = env.start(env.config()).await;
    env.add_user("uma", Some("uma@example.com"), Some("Old-Cobalt-Lantern-1")).await;

    // Idle longer than the idle timeout (900 s).
    let (mut c, otp) = reset_until_otp(&server, &env.outbox(), "uma", "uma@example.com").await;
    env.clock.advance_ms(901_000);
    let r = c.check_otp(&otp).await;
    assert_json_error(&r, 403, "FLOW_SESSION_EXPIRED");
    assert!(c.cookie.is_none(), "the cookie is cleared");
    assert!(env.user("uma").await.failed_attempts.is_empty());

    // Active, but past the absolute lifetime (3600 s).
    let (mut c, _) = reset_until_otp(&server, &env.outbox(), "uma", "uma@example.com").await;
    for _ in 0..4 {
        env.clock.advance_ms(800_000);
        // An unexpected call changes nothing but keeps the session from idling out.
        assert_json_error(&c.identify("uma").await, 400, "UNEXPECTED_CALL");
    }
    env.clock.advance_ms(800_000);
    let r = c.resend().await;
    assert_json_error(&r, 403, "FLOW_SESSION_EXPIRED");

    // Abort ends a running flow; calls after it are unexpected.
    let (mut c, otp) = reset_until_otp(&server, &env.outbox(), "uma", "uma@example.com").await;
    let cookie = c.cookie.clone();
    let r = raw(&mut c, reqwest::Method::DELETE, "/rest/public/self-service/flow", &[("x-same-domain", "1")], "").await;
    assert_eq!(r.status, 204);
    c.cookie = cookie;
    assert_json_error(&c.check_otp(&otp).await, 400, "UNEXPECTED_CALL");
    server.stop().await;
    env.cleanup().await;
}

on_both_backends!(authentication_endpoints_refuse_bad_input);

async fn authentication_endpoints_refuse_bad_input(backend: Backend) {
    let env = TestEnv::new(backend).await;
    let server = env.start(env.config()).await;
    env.add_user("olga", None, Some("Old-Cobalt-Lantern-1")).await;
    let json = [("content-type", "application/json"), ("x-same-domain", "1")];
    let post = reqwest::Method::POST;
    let mut c = server.client();
    let pw = "/rest/public/authentication/password/check/";
    let cases: Vec<(Resp, u16, &str)> = vec![
        (raw(&mut c, post.clone(), pw, &json, "{\"username\": \"olga\"").await, 400, "INVALID_JSON"),
        (raw(&mut c, post.clone(), pw, &json, "{\"username\": \"olga\"}").await, 400, "INVALID_REQUEST"),
        (
            raw(&mut c, post.clone(), pw, &json, "{\"username\": \"olga\", \"password\": 1}").await,
            400,
            "INVALID_REQUEST",
        ),
        (
            raw(&mut c, post.clone(), pw, &json, "{\"username\": \"\", \"password\": \"x\"}").await,
            400,
            "INVALID_REQUEST",
        ),
        (
            raw(
                &mut c,
                post.clone(),
                pw,
                &json,
                &format!("{{\"username\": \"olga\", \"password\": \"{}\"}}", "x".repeat(5000)),
            )
            .await,
            400,
            "INVALID_REQUEST",
        ),
        (raw(&mut c, post.clone(), pw, &[("x-same-domain", "1")], "{}").await, 415, "UNSUPPORTED_MEDIA_TYPE"),
        (
            raw(&mut c, post.clone(), pw, &[("content-type", "application/json")], "{}").await,
            403,
            "CSRF_HEADER_MISSING",
        ),
        (
            raw(&mut c, post.clone(), "/rest/public/authentication/otp/check/", &json, "{\"otp\": 1}").await,
            400,
            "INVALID_REQUEST",
        ),
        (
            raw(&mut c, post.clone(), "/rest/public/authentication/otp/check/", &json, "{\"otp\": \"1\"}").await,
            400,
            "UNEXPECTED_CALL",
        ),
        (
            raw(&mut c, post.clone(), "/rest/public/authentication/mtan/otp/check", &json, "{\"otp\": \"1\"}").await,
            400,
            "UNEXPECTED_CALL",
        ),
        (
            raw(&mut c, post.clone(), "/rest/public/authentication/mtan/otp/resend/", &json, "").await,
            400,
            "UNEXPECTED_CALL",
        ),
        (
            raw(&mut c, post.clone(), "/rest/public/authentication/selection/options/retrieve", &json, "[]").await,
            400,
            "INVALID_REQUEST",
        ),
        (
            raw(&mut c, post.clone(), "/rest/public/authentication/selection/options/MTAN/select", &json, "").await,
            400,
            "UNEXPECTED_CALL",
        ),
        (raw(&mut c, reqwest::Method::GET, pw, &json, "").await, 405, "METHOD_NOT_ALLOWED"),
        (raw(&mut c, reqwest::Method::GET, "/rest/protected/session", &[], "").await, 401, "NOT_AUTHENTICATED"),
        (
            raw(&mut c, reqwest::Method::DELETE, "/rest/protected/session", &[("x-same-domain", "1")], "").await,
            401,
            "NOT_AUTHENTICATED",
        ),
    ];
    for (r, status, code) in &cases {
        assert_json_error(r, *status, code);
    }
    // Nothing was counted, and the user logs in.
    assert!(env.user("olga").await.failed_attempts.is_empty());
    let mut c = server.client();
    c.login("olga", "Old-Cobalt-Lantern-1").await.expect(200);
    // A logged-in user's bad input on protected calls: 4xx, nothing changed.
    for (path, body, status, code) in [
        ("/rest/protected/self-service/phone/", "{\"phone\": 41}", 400, "INVALID_REQUEST"),
        ("/rest/protected/self-service/password/change/", "{\"oldPassword\": \"x\"}", 400, "INVALID_REQUEST"),
        ("/rest/protected/self-service/totp/confirm/", "{\"otp\": \"123456\"}", 400, "NO_PENDING_ENROLLMENT"),
        ("/rest/protected/self-service/totp/enroll/", "{\"x\": 1}", 400, "INVALID_REQUEST"),
    ] {
        let r = raw(&mut c, post.clone(), path, &json, body).await;
        assert_json_error(&r, status, code);
    }
    let user = env.user("olga").await;
    assert!(user.failed_attempts.is_empty() && !user.context.contains_key("phone"));
    server.stop().await;
    env.cleanup().await;
}

on_both_backends!(device_and_approval_endpoints_refuse_bad_input);

async fn device_and_approval_endpoints_refuse_bad_input(backend: Backend) {
    let env = TestEnv::new(backend).await;
    let server = env.start(env.config()).await;
    env.add_user("pat", None, Some("Old-Cobalt-Lantern-1")).await;
    let json = [("content-type", "application/json"), ("x-same-domain", "1")];
    let post = reqwest::Method::POST;
    let mut c = server.client();
    let key = gatehouse_core::authenticator::DeviceKey::generate(&gatehouse_core::random::SystemRandom);
    let good_key = key.public_key();
    let offline = gatehouse_core::authenticator::encode(&[1u8; 32]);
    let activate = |code: &str, public_key: &str, offline_key: &str, name: &str| {
        serde_json::json!({ "code": code, "publicKey": public_key, "offlineKey": offline_key, "displayName": name })
            .to_string()
    };
    let cases: Vec<(Resp, u16, &str)> = vec![
        (raw(&mut c, post.clone(), "/rest/device/activate", &json, "{").await, 400, "INVALID_JSON"),
        (raw(&mut c, post.clone(), "/rest/device/activate", &json, "{\"code\": \"1\"}").await, 400, "INVALID_REQUEST"),
        (
            raw(
                &mut c,
                post.clone(),
                "/rest/device/activate",
                &json,
                &activate("1234567890123456", "bad", &offline, "x"),
            )
            .await,
            400,
            "INVALID_REQUEST",
        ),
        (
            raw(
                &mut c,
                post.clone(),
                "/rest/device/activate",
                &json,
                &activate("1234567890123456", &good_key, "short", "x"),
            )
            .await,
            400,
            "INVALID_REQUEST",
        ),
        (
            raw(
                &mut c,
                post.clone(),
                "/rest/device/activate",
                &json,
                &activate("1234567890123456", &good_key, &offline, ""),
            )
            .await,
            400,
            "INVALID_REQUEST",
        ),
        (
            raw(
                &mut c,
                post.clone(),
                "/rest/device/activate",
                &json,
                &activate("1234567890123456", &good_key, &offline, "x"),
            )
            .await,
            400,
            "ACTIVATION_INVALID",
        ),
        (raw(&mut c, reqwest::Method::GET, "/rest/device/approvals", &[], "").await, 401, "DEVICE_NOT_AUTHENTICATED"),
        (
            raw(
                &mut c,
                reqwest::Method::GET,
                "/rest/device/approvals",
                &[("x-device-id", "d"), ("x-device-timestamp", "soon"), ("x-device-signature", "s")],
                "",
            )
            .await,
            401,
            "DEVICE_NOT_AUTHENTICATED",
        ),
        (
            raw(
                &mut c,
                reqwest::Method::GET,
                "/rest/device/approvals",
                &[("x-device-id", "d"), ("x-device-timestamp", "1"), ("x-device-signature", "s")],
                "",
            )
            .await,
            401,
            "DEVICE_NOT_AUTHENTICATED",
        ),
        (
            raw(&mut c, post.clone(), "/rest/device/approvals/x/decision", &json, "{\"deviceId\": \"d\"}").await,
            400,
            "INVALID_REQUEST",
        ),
        (
            raw(
                &mut c,
                post.clone(),
                "/rest/device/approvals/x/decision",
                &json,
                "{\"deviceId\": \"d\", \"decision\": \"maybe\", \"number\": 1, \"signature\": \"s\"}",
            )
            .await,
            400,
            "INVALID_REQUEST",
        ),
        (
            raw(
                &mut c,
                post.clone(),
                "/rest/device/approvals/x/decision",
                &json,
                "{\"deviceId\": \"d\", \"decision\": \"approve\", \"number\": -1, \"signature\": \"s\"}",
            )
            .await,
            400,
            "INVALID_REQUEST",
        ),
        (
            raw(
                &mut c,
                post.clone(),
                "/rest/device/approvals/x/decision",
                &json,
                "{\"deviceId\": \"d\", \"decision\": \"approve\", \"number\": 1, \"signature\": \"s\"}",
            )
            .await,
            404,
            "APPROVAL_NOT_FOUND",
        ),
        (
            raw(&mut c, post.clone(), "/rest/public/self-service/app-2fa/status/poll/", &json, "").await,
            400,
            "UNEXPECTED_CALL",
        ),
        (
            raw(&mut c, post.clone(), "/rest/public/self-service/app-2fa/offline/check/", &json, "{\"otp\": 5}").await,
            400,
            "INVALID_REQUEST",
        ),
        (
            raw(&mut c, post.clone(), "/rest/public/authentication/app-2fa/status/poll/", &json, "").await,
            400,
            "UNEXPECTED_CALL",
        ),
        (
            raw(&mut c, post.clone(), "/rest/public/authentication/app-2fa/offline/challenge/", &json, "{\"x\": 1}")
                .await,
            400,
            "INVALID_REQUEST",
        ),
        (
            raw(&mut c, post.clone(), "/rest/protected/self-service/app-2fa/activation/", &json, "").await,
            401,
            "NOT_AUTHENTICATED",
        ),
    ];
    for (r, status, code) in &cases {
        assert_json_error(r, *status, code);
    }
    // Inside a self-unlock flow, calls of other steps are unexpected and nothing was created.
    let mut flow = server.client();
    flow.select("self-unlock").await.expect(200);
    assert_json_error(
        &raw(&mut flow, post.clone(), "/rest/public/self-service/app-2fa/offline/check/", &json, "{\"otp\": \"1\"}")
            .await,
        400,
        "UNEXPECTED_CALL",
    );
    let user = env.user("pat").await;
    assert!(env.store().await.list_devices(&user.id).await.unwrap().is_empty());
    assert!(user.failed_attempts.is_empty());
    server.stop().await;
    env.cleanup().await;
}
