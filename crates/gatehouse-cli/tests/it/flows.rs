//! Configured flows end to end: login flows per application, SMS password reset, self-unlock and the complex
//! reset with the second factors, factors answering alike in login and self-service, template overrides, and
//! bad input on the new endpoints.

// These helpers of other test modules are used here and must be `pub(crate)`:
// - second_factor.rs: `PW`, `oathtool`, `enroll_totp`, `sms_code`, `add_phone_user`
// - self_unlock.rs:   `enroll`, `approve_all`, `lock_by_wrong_passwords`
// - bad_input.rs:     `raw`, `assert_json_error`

use std::time::{Duration, Instant};

use gatehouse_core::admin::{AddUser, InitialPassword, UserAdmin};
use gatehouse_core::clock::Clock as _;
use gatehouse_core::config::{
    Application, AuthenticationFlow, MtanStep, PasswordStep, PublicSelfServiceFlow, RequiredRoleStep, Restrictions,
    SelectionStep, SetPasswordStep, Step, TotpStep, UserIdentificationStep, UsernameStep,
};
use gatehouse_core::crypto::{HashParams, Passwords};
use gatehouse_core::ports::Effect;
use gatehouse_core::random::SystemRandom;
use serde_json::json;

use crate::authenticator::{config_on_port, enroll_cli_authenticator, gatehouse, ok, pending};
use crate::bad_input::{assert_json_error, raw};
use crate::harness::{Backend, Client, Resp, TestEnv, TestServer, wait_for_mails};
use crate::on_both_backends;
use crate::second_factor::{PW, add_phone_user, enroll_totp, oathtool, sms_code};
use crate::self_unlock::{approve_all, enroll, lock_by_wrong_passwords};

on_both_backends!(
    configured_login_flow_and_applications,
    reset_by_sms,
    self_unlock_by_totp_or_sms,
    complex_reset_by_totp_or_authenticator,
    factors_answer_alike_in_login_and_self_service,
    template_override_changes_the_mail,
    bad_input_on_new_endpoints,
    reset_by_email_link,
    legacy_entry_and_acknowledge_step,
    reset_by_secret_questions,
    complex_reset_approved_with_the_cli_authenticator,
);

const NEW_PW: &str = "Quiet-Harbor-Gull-58";

const AUTH_OTP_CHECK: &str = "/rest/public/authentication/otp/check/";
const AUTH_MTAN_CHECK: &str = "/rest/public/authentication/mtan/otp/check/";
const AUTH_IDENTIFY: &str = "/rest/public/authentication/username/identify/";
const PSS_OTP_CHECK: &str = "/rest/public/self-service/otp/check/";
const PSS_MTAN_CHECK: &str = "/rest/public/self-service/mtan/otp/check/";
const SMS_CHECK: &str = "/rest/public/self-service/verification/sms/otp/check/";
const SMS_RESEND: &str = "/rest/public/self-service/verification/sms/otp/resend/";
const TOKEN_CHECK: &str = "/rest/public/self-service/flow-continuation/token/check/";

// ---------------------------------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------------------------------

fn app(id: &str, flow: &str, roles: &[&str]) -> Application {
    Application { id: id.into(), flow: flow.into(), required_roles: roles.iter().map(|r| (*r).to_owned()).collect() }
}

/// A user with password `PW` and these roles (no effect sets roles, so through the admin service).
async fn add_user_with_roles(env: &TestEnv, username: &str, roles: &[&str]) {
    let store = env.store().await;
    let hasher = Passwords::new(HashParams { memory_kib: 1024, iterations: 1, parallelism: 1 }).unwrap();
    let policy = env.config().password_policy;
    let admin = UserAdmin {
        store: store.as_ref(),
        email_as_alias: false,
        hasher: &hasher,
        policy: &policy,
        clock: env.clock.as_ref(),
        random: &SystemRandom,
        actor: "admin:test".into(),
    };
    admin
        .add(AddUser {
            username: username.into(),
            email: None,
            phone: None,
            aliases: vec![],
            roles: roles.iter().map(|r| (*r).to_owned()).collect(),
            context: Default::default(),
            password: InitialPassword::Plain(PW.into()),
        })
        .await
        .unwrap();
}

/// Gives an existing user a phone number (after TOTP enrollment, so the enrollment login asks for no SMS).
async fn set_phone(env: &TestEnv, username: &str, phone: &str) {
    set_item(env, username, "phone", phone).await;
}

async fn set_item(env: &TestEnv, username: &str, key: &str, value: &str) {
    let user = env.user(username).await;
    let effect = Effect::SetContextItem { user_id: user.id, key: key.into(), value: Some(value.into()), at: 1 };
    env.store().await.apply(&[effect]).await.unwrap();
}

/// The text of the first PDF in the letter outbox, read by pdftotext (an independent PDF reader).
async fn wait_for_letter(env: &TestEnv) -> String {
    let dir = env.dir.path().join("letters");
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let pdf = std::fs::read_dir(&dir).ok().and_then(|d| {
            d.filter_map(Result::ok).map(|e| e.path()).find(|p| p.extension().is_some_and(|x| x == "pdf"))
        });
        if let Some(pdf) = pdf {
            let out = std::process::Command::new("pdftotext")
                .arg(&pdf)
                .arg("-")
                .output()
                .expect("pdftotext is needed (apt-get install poppler-utils)");
            assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
            return String::from_utf8_lossy(&out.stdout).into_owned();
        }
        assert!(Instant::now() < deadline, "no letter in {}", dir.display());
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

/// Adds a user without factors, logs in and enrolls TOTP; returns the secret.
async fn add_totp_user(env: &TestEnv, server: &TestServer, username: &str, email: Option<&str>) -> String {
    env.add_user(username, email, Some(PW)).await;
    let mut c = server.client();
    let r = c.login(username, PW).await;
    assert_eq!(r.body["data"]["attributes"], json!({}), "{}", r.body);
    enroll_totp(env, &mut c).await
}

/// A TOTP code of a later time step than any used before: moves the shared test clock (the server's too) on
/// by one period, since each time step's code is accepted once.
fn fresh_totp(env: &TestEnv, secret: &str) -> String {
    env.clock.advance_ms(30_000);
    oathtool(secret, env.clock.now_ms())
}

/// A 6-digit code that none of the time steps accepted now matches.
fn wrong_totp(env: &TestEnv, secret: &str) -> String {
    let now = env.clock.now_ms();
    let valid: Vec<String> = [-30_000, 0, 30_000].iter().map(|d| oathtool(secret, now + d)).collect();
    let wrong = ["000000", "111111", "222222", "333333"].into_iter().find(|c| !valid.iter().any(|v| v.as_str() == *c));
    wrong.unwrap().to_owned()
}

/// A code of the same length that is not `code`.
fn not_the_code(code: &str) -> String {
    let zeros = "0".repeat(code.len());
    if code == zeros { "1".repeat(code.len()) } else { zeros }
}

/// Every SMS in the file outbox (`*.sms.json`), oldest first.
fn sms_messages(env: &TestEnv) -> Vec<serde_json::Value> {
    let Ok(dir) = std::fs::read_dir(env.outbox()) else {
        return vec![];
    };
    let mut paths: Vec<std::path::PathBuf> =
        dir.filter_map(Result::ok).map(|e| e.path()).filter(|p| p.to_string_lossy().ends_with(".sms.json")).collect();
    paths.sort();
    paths.iter().map(|p| serde_json::from_str(&std::fs::read_to_string(p).unwrap()).unwrap()).collect()
}

/// Waits for the `n`-th SMS to `to` and returns its text.
async fn wait_for_sms(env: &TestEnv, to: &str, n: usize) -> String {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let texts: Vec<String> = sms_messages(env)
            .into_iter()
            .filter(|m| m["to"] == to)
            .map(|m| m["text"].as_str().unwrap_or_default().to_owned())
            .collect();
        if texts.len() >= n {
            return texts[n - 1].clone();
        }
        assert!(Instant::now() < deadline, "no SMS #{n} to {to}");
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

/// The first run of exactly `len` digits in `text`.
fn code_of_len(text: &str, len: usize) -> String {
    text.split(|c: char| !c.is_ascii_digit())
        .find(|w| w.len() == len)
        .unwrap_or_else(|| panic!("no {len}-digit code in {text}"))
        .to_owned()
}

/// What a wrong answer looked like: status, error codes, next-step code.
type WrongAnswer = (u16, Vec<String>, Option<String>);

async fn failed_attempts(env: &TestEnv, username: &str, method: &str) -> i64 {
    env.user(username).await.failed_attempts.get(method).copied().unwrap_or(0)
}

async fn access(c: &mut Client, application: &str) -> Resp {
    c.post(&format!("/rest/public/authentication/applications/{application}/access/"), None).await
}

#[track_caller]
fn assert_not_authorized(r: &Resp, next: &str) {
    assert_eq!((r.status, r.error_codes()), (401, vec!["NOT_AUTHORIZED".to_owned()]), "{}", r.body);
    assert_eq!(r.body["meta"]["nextAuthStep"], next, "{}", r.body);
}

#[track_caller]
fn assert_refused(r: &Resp, status: u16, code: &str) {
    assert_eq!((r.status, r.error_codes()), (status, vec![code.to_owned()]), "{}", r.body);
}

// ---------------------------------------------------------------------------------------------------------------
// 1. Login flows per application
// ---------------------------------------------------------------------------------------------------------------

async fn configured_login_flow_and_applications(backend: Backend) {
    const TARA: &str = "+41790001001";
    let env = TestEnv::new(backend).await;
    let mut config = env.config();
    let auth = &mut config.authentication;
    auth.flows.push(AuthenticationFlow {
        id: "strict".into(),
        steps: vec![
            Step::Password(PasswordStep {}),
            Step::Selection(SelectionStep { required: true, ..SelectionStep::default() }),
        ],
    });
    auth.flows.push(AuthenticationFlow {
        id: "rolecheck".into(),
        steps: vec![
            Step::Password(PasswordStep {}),
            Step::RequiredRole(RequiredRoleStep { roles: vec!["admin".into()] }),
        ],
    });
    auth.flows.push(AuthenticationFlow {
        id: "passwordless".into(),
        steps: vec![Step::Username(UsernameStep {}), Step::Totp(TotpStep {})],
    });
    auth.applications.push(app("strict-app", "strict", &[]));
    auth.applications.push(app("staff", "login", &["staff"]));
    auth.applications.push(app("rolecheck-app", "rolecheck", &[]));
    auth.applications.push(app("passwordless-app", "passwordless", &[]));
    config.validate().unwrap();
    let server = env.start(config).await;

    let secret = add_totp_user(&env, &server, "tara", None).await;
    set_phone(&env, "tara", TARA).await;
    env.add_user("nils", None, Some(PW)).await;
    add_user_with_roles(&env, "stan", &["staff"]).await;
    add_user_with_roles(&env, "ada", &["admin"]).await;

    // strict-app: not authorized until its flow is done; the required selection offers the user's factors.
    let mut c = server.client();
    assert_not_authorized(&access(&mut c, "strict-app").await, "PASSWORD_REQUIRED");
    let r = c.login("tara", PW).await;
    r.expect(200);
    assert_eq!(r.next_auth_step(), Some("SELECTION_REQUIRED"), "{}", r.body);
    let r = c.post("/rest/public/authentication/selection/options/retrieve", None).await;
    r.expect(200);
    assert_eq!(r.body["data"]["attributes"]["options"], json!(["OATH_OTP", "MTAN"]), "{}", r.body);
    let r = c.post("/rest/public/authentication/selection/options/MTAN/select", None).await;
    r.expect(200);
    assert_eq!(r.next_auth_step(), Some("MTAN_OTP_REQUIRED"), "{}", r.body);
    let code = sms_code(&env, TARA, 1).await;
    let r = c.post(AUTH_MTAN_CHECK, Some(json!({ "otp": code }))).await;
    r.expect(200);
    assert_eq!(r.body["data"]["attributes"], json!({}), "{}", r.body);
    let r = access(&mut c, "strict-app").await;
    r.expect(200);
    assert_eq!(r.body["data"]["attributes"]["application"], "strict-app", "{}", r.body);

    // A user without any factor cannot pass the required selection.
    let mut c = server.client();
    assert_not_authorized(&access(&mut c, "strict-app").await, "PASSWORD_REQUIRED");
    assert_refused(&c.login("nils", PW).await, 403, "SECOND_FACTOR_MISSING");

    // staff (the demo login flow, role `staff` required): refused without the role, let in with it.
    let mut c = server.client();
    assert_not_authorized(&access(&mut c, "staff").await, "PASSWORD_REQUIRED");
    assert_refused(&c.login("nils", PW).await, 403, "USER_ROLE_MISSING");
    assert!(!c.jar.contains_key("gatehouse_session"), "no session without the role");
    let mut c = server.client();
    assert_not_authorized(&access(&mut c, "staff").await, "PASSWORD_REQUIRED");
    let r = c.login("stan", PW).await;
    r.expect(200);
    assert_eq!(r.body["data"]["attributes"], json!({}), "{}", r.body);
    access(&mut c, "staff").await.expect(200);

    // An unknown application.
    assert_refused(&access(&mut server.client(), "no-such-app").await, 404, "APPLICATION_NOT_FOUND");

    // The default application.
    let mut c = server.client();
    let r = c.post("/rest/public/authentication/default-application/access/", None).await;
    assert_not_authorized(&r, "PASSWORD_REQUIRED");
    let r = c.login("nils", PW).await;
    r.expect(200);
    assert_eq!(r.body["data"]["attributes"], json!({}), "{}", r.body);
    let r = c.post("/rest/public/authentication/default-application/access/", None).await;
    r.expect(200);
    assert_eq!(r.body["data"]["attributes"]["application"], "default", "{}", r.body);

    // A required-role step refuses right at the password check.
    let mut c = server.client();
    assert_not_authorized(&access(&mut c, "rolecheck-app").await, "PASSWORD_REQUIRED");
    assert_refused(&c.login("nils", PW).await, 403, "USER_ROLE_MISSING");
    let mut c = server.client();
    assert_not_authorized(&access(&mut c, "rolecheck-app").await, "PASSWORD_REQUIRED");
    c.login("ada", PW).await.expect(200);
    access(&mut c, "rolecheck-app").await.expect(200);

    // Passwordless: username, then TOTP. A real user and an unknown name are answered alike.
    let mut real = server.client();
    let mut ghost = server.client();
    let wrong = wrong_totp(&env, &secret);
    for (c, name) in [(&mut real, "tara"), (&mut ghost, "nobody-here")] {
        assert_not_authorized(&access(c, "passwordless-app").await, "USERNAME_REQUIRED");
        let r = c.post(AUTH_IDENTIFY, Some(json!({ "username": name }))).await;
        assert_eq!(r.status, 200, "{name}: {}", r.body);
        assert_eq!(r.next_auth_step(), Some("OTP_REQUIRED"), "{name}: {}", r.body);
        let r = c.post(AUTH_OTP_CHECK, Some(json!({ "otp": wrong }))).await;
        assert_eq!((r.status, r.error_codes()), (400, vec!["OTP_WRONG".to_owned()]), "{name}: {}", r.body);
        assert_eq!(r.body["meta"]["nextAuthStep"], "OTP_REQUIRED", "{name}: {}", r.body);
    }
    let r = real.post(AUTH_OTP_CHECK, Some(json!({ "otp": fresh_totp(&env, &secret) }))).await;
    r.expect(200);
    assert_eq!(r.body["data"]["attributes"], json!({}), "{}", r.body);
    real.get("/rest/protected/session").await.expect(200);

    server.stop().await;
    env.cleanup().await;
}

// ---------------------------------------------------------------------------------------------------------------
// 2. Password reset by SMS
// ---------------------------------------------------------------------------------------------------------------

async fn reset_by_sms(backend: Backend) {
    const SARA: &str = "+41790002001";
    let env = TestEnv::new(backend).await;
    let server = env.start(env.config()).await;
    add_phone_user(&env, "sara", SARA).await;

    // An unknown name first: it must get what the real user gets, and nothing is sent for it.
    let mut ghost = server.client();
    ghost.select("password-reset-sms").await.expect(200);
    let unknown = ghost.identify("nobody-here").await;

    let mut c = server.client();
    c.select("password-reset-sms").await.expect(200);
    let r = c.identify("sara").await;
    r.expect(200);
    assert_eq!(r.next_step(), Some("SMS_OTP_REQUIRED"), "{}", r.body);
    assert_eq!((unknown.status, unknown.next_step()), (r.status, r.next_step()), "{}", unknown.body);
    let first = code_of_len(&wait_for_sms(&env, SARA, 1).await, 8);
    assert_eq!(sms_messages(&env).len(), 1, "no SMS for the unknown name");

    // A wrong code: retry.
    let r = c.post(SMS_CHECK, Some(json!({ "otp": not_the_code(&first) }))).await;
    assert_refused(&r, 400, "SMS_OTP_WRONG");
    assert_eq!(r.body["meta"]["nextStep"], "SMS_OTP_REQUIRED", "{}", r.body);

    // Resend: a second SMS; only its code works.
    let r = c.post(SMS_RESEND, None).await;
    r.expect(200);
    assert_eq!(r.next_step(), Some("SMS_OTP_REQUIRED"), "{}", r.body);
    let second = code_of_len(&wait_for_sms(&env, SARA, 2).await, 8);
    if first != second {
        let r = c.post(SMS_CHECK, Some(json!({ "otp": first }))).await;
        assert_refused(&r, 400, "SMS_OTP_WRONG");
    }
    let r = c.post(SMS_CHECK, Some(json!({ "otp": second }))).await;
    r.expect(200);
    assert_eq!(r.next_step(), Some("NEW_PASSWORD_REQUIRED"), "{}", r.body);
    c.set_password(NEW_PW).await.expect(200);

    // The new password is accepted (the phone is asked next).
    let r = server.client().login("sara", NEW_PW).await;
    r.expect(200);
    assert_eq!(r.next_auth_step(), Some("MTAN_OTP_REQUIRED"), "{}", r.body);

    server.stop().await;
    env.cleanup().await;
}

// ---------------------------------------------------------------------------------------------------------------
// 3. Self-unlock with TOTP or an SMS code
// ---------------------------------------------------------------------------------------------------------------

async fn self_unlock_by_totp_or_sms(backend: Backend) {
    const ALMA: &str = "+41790003001";
    const BERT: &str = "+41790003002";
    let env = TestEnv::new(backend).await;
    let server = env.start(env.config()).await;

    // alma has TOTP and a phone: she chooses.
    let secret = add_totp_user(&env, &server, "alma", None).await;
    set_phone(&env, "alma", ALMA).await;
    lock_by_wrong_passwords(&server, "alma").await;
    assert!(env.user("alma").await.locked);
    let mut c = server.client();
    c.select("self-unlock").await.expect(200);
    let r = c.identify("alma").await;
    r.expect(200);
    assert_eq!(r.next_step(), Some("SELECTION_REQUIRED"), "{}", r.body);
    let r = c.post("/rest/public/self-service/selection/options/retrieve", None).await;
    r.expect(200);
    assert_eq!(r.body["data"]["attributes"]["options"], json!(["OATH_OTP", "MTAN"]), "{}", r.body);
    let r = c.post("/rest/public/self-service/selection/options/OATH_OTP/select", None).await;
    r.expect(200);
    assert_eq!(r.next_step(), Some("OTP_REQUIRED"), "{}", r.body);
    let r = c.post(PSS_OTP_CHECK, Some(json!({ "otp": fresh_totp(&env, &secret) }))).await;
    r.expect(200);
    assert_eq!(r.body["data"]["attributes"], json!({}), "{}", r.body);
    assert!(!env.user("alma").await.locked);
    let r = server.client().login("alma", PW).await;
    r.expect(200);
    assert_eq!(r.next_auth_step(), Some("SELECTION_REQUIRED"), "{}", r.body);

    // bert has only a phone: the SMS code is asked at once.
    add_phone_user(&env, "bert", BERT).await;
    lock_by_wrong_passwords(&server, "bert").await;
    assert!(env.user("bert").await.locked);
    let mut c = server.client();
    c.select("self-unlock").await.expect(200);
    let r = c.identify("bert").await;
    r.expect(200);
    assert_eq!(r.next_step(), Some("MTAN_OTP_REQUIRED"), "{}", r.body);
    let code = sms_code(&env, BERT, 1).await;
    let r = c.post(PSS_MTAN_CHECK, Some(json!({ "otp": code }))).await;
    r.expect(200);
    assert_eq!(r.body["data"]["attributes"], json!({}), "{}", r.body);
    assert!(!env.user("bert").await.locked);
    // The unlock initialized the next login in this browser: the password alone, no username.
    let r = c.post("/rest/public/authentication/password/check/", Some(json!({ "password": "wrong" }))).await;
    assert_refused(&r, 400, "USERNAME_PASSWORD_WRONG");
    assert_eq!(failed_attempts(&env, "bert", "PASSWORD").await, 1, "the known user's counter counts");
    let r = c.post("/rest/public/authentication/password/check/", Some(json!({ "password": PW }))).await;
    r.expect(200);
    assert_eq!(r.next_auth_step(), Some("MTAN_OTP_REQUIRED"), "the second factor is still asked: {}", r.body);
    // Elsewhere a password without a name matches nobody.
    let r = server.client().post("/rest/public/authentication/password/check/", Some(json!({ "password": PW }))).await;
    assert_refused(&r, 400, "USERNAME_PASSWORD_WRONG");
    let r = server.client().login("bert", PW).await;
    r.expect(200);
    assert_eq!(r.next_auth_step(), Some("MTAN_OTP_REQUIRED"), "{}", r.body);

    server.stop().await;
    env.cleanup().await;
}

// ---------------------------------------------------------------------------------------------------------------
// 4. Complex reset: email code, then TOTP or the authenticator
// ---------------------------------------------------------------------------------------------------------------

/// Starts password-reset-complex for `username` and answers the mailed code; the answer to that code.
async fn complex_reset_past_email(env: &TestEnv, server: &TestServer, username: &str, email: &str) -> (Client, Resp) {
    let mut c = server.client();
    c.select("password-reset-complex").await.expect(200);
    let r = c.identify(username).await;
    r.expect(200);
    assert_eq!(r.next_step(), Some("EMAIL_OTP_REQUIRED"), "{}", r.body);
    let mails = wait_for_mails(&env.outbox(), email, 1).await;
    let r = c.check_otp(&mails[0].otp()).await;
    (c, r)
}

async fn complex_reset_by_totp_or_authenticator(backend: Backend) {
    let env = TestEnv::new(backend).await;
    let mut config = env.config();
    config.authenticator.poll_wait_seconds = 2;
    let server = env.start(config).await;

    // TOTP: the only option the user has is asked at once.
    let secret = add_totp_user(&env, &server, "cleo", Some("cleo@example.com")).await;
    let (mut c, r) = complex_reset_past_email(&env, &server, "cleo", "cleo@example.com").await;
    r.expect(200);
    assert_eq!(r.next_step(), Some("OTP_REQUIRED"), "{}", r.body);
    let r = c.post(PSS_OTP_CHECK, Some(json!({ "otp": fresh_totp(&env, &secret) }))).await;
    r.expect(200);
    assert_eq!(r.next_step(), Some("NEW_PASSWORD_REQUIRED"), "{}", r.body);
    c.set_password(NEW_PW).await.expect(200);

    // The authenticator: approve on the device, then poll.
    env.add_user("dana", Some("dana@example.com"), Some(PW)).await;
    let (key, device) = enroll(&env, &server, "dana").await;
    let (mut c, r) = complex_reset_past_email(&env, &server, "dana", "dana@example.com").await;
    r.expect(200);
    assert_eq!(r.next_step(), Some("APP_2FA_POLLING_OR_OFFLINE_REQUIRED"), "{}", r.body);
    assert!(r.body["data"]["attributes"]["number"].is_u64(), "{}", r.body);
    assert_eq!(approve_all(&env, &server, "dana", &key, &device).await, 1);
    let r = c.post("/rest/public/self-service/app-2fa/status/poll/", None).await;
    r.expect(200);
    assert_eq!(r.next_step(), Some("NEW_PASSWORD_REQUIRED"), "{}", r.body);
    c.set_password(NEW_PW).await.expect(200);

    // A letter: offered to a user with a postal address; the flow ends, the PDF carries the new password.
    add_totp_user(&env, &server, "fred", Some("fred@example.com")).await;
    set_item(&env, "fred", "postal_address", "Fred Muster; Bahnhofstrasse 1; 8001 Zürich").await;
    let (mut c, r) = complex_reset_past_email(&env, &server, "fred", "fred@example.com").await;
    assert_eq!(r.next_step(), Some("SELECTION_REQUIRED"), "{}", r.body);
    let r = c.post("/rest/public/self-service/selection/options/retrieve", None).await;
    assert_eq!(r.body["data"]["attributes"]["options"], json!(["OATH_OTP", "LETTER"]), "{}", r.body);
    let r = c.post("/rest/public/self-service/selection/options/LETTER/select", None).await;
    r.expect(200);
    assert_eq!(r.body["data"]["attributes"], json!({ "letterOrdered": true }), "{}", r.body);
    let letter = wait_for_letter(&env).await;
    assert!(letter.contains("Bahnhofstrasse 1") && letter.contains("fred"), "{letter}");
    let password = letter
        .lines()
        .map(str::trim)
        .find(|l| l.len() == 12 && l.chars().all(|c| c.is_ascii_alphanumeric()))
        .unwrap_or_else(|| panic!("no one-time password in the letter: {letter}"))
        .to_owned();
    assert_eq!(server.client().login("fred", &password).await.status, 200, "the letter's password logs in");
    assert_refused(&server.client().login("fred", PW).await, 400, "USERNAME_PASSWORD_WRONG");

    // No second factor: the required selection ends the flow.
    env.add_user("emil", Some("emil@example.com"), Some(PW)).await;
    let (_, r) = complex_reset_past_email(&env, &server, "emil", "emil@example.com").await;
    assert_refused(&r, 403, "SECOND_FACTOR_MISSING");

    server.stop().await;
    env.cleanup().await;
}

// ---------------------------------------------------------------------------------------------------------------
// 5. A factor answers alike in login and in self-service
// ---------------------------------------------------------------------------------------------------------------

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Factor {
    Totp,
    Mtan,
    App,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Login,
    SelfService,
}

impl Kind {
    fn next_attribute(self) -> &'static str {
        match self {
            Self::Login => "nextAuthStep",
            Self::SelfService => "nextStep",
        }
    }
}

#[derive(Debug)]
struct Row {
    factor: Factor,
    kind: Kind,
    /// The application (login) or the self-service flow that holds the factor.
    start: &'static str,
    check: &'static str,
    wrong_status: u16,
    wrong_code: &'static str,
    next: &'static str,
    /// The failed-attempt counter of the factor.
    method: &'static str,
}

fn factor_rows() -> Vec<Row> {
    vec![
        Row {
            factor: Factor::Totp,
            kind: Kind::Login,
            start: "totp-app",
            check: AUTH_OTP_CHECK,
            wrong_status: 400,
            wrong_code: "OTP_WRONG",
            next: "OTP_REQUIRED",
            method: "OTP",
        },
        Row {
            factor: Factor::Totp,
            kind: Kind::SelfService,
            start: "reset-by-totp",
            check: PSS_OTP_CHECK,
            wrong_status: 400,
            wrong_code: "OTP_WRONG",
            next: "OTP_REQUIRED",
            method: "OTP",
        },
        Row {
            factor: Factor::Mtan,
            kind: Kind::Login,
            start: "mtan-app",
            check: AUTH_MTAN_CHECK,
            wrong_status: 400,
            wrong_code: "MTAN_OTP_WRONG",
            next: "MTAN_OTP_REQUIRED",
            method: "MTAN",
        },
        Row {
            factor: Factor::Mtan,
            kind: Kind::SelfService,
            start: "reset-by-mtan",
            check: PSS_MTAN_CHECK,
            wrong_status: 400,
            wrong_code: "MTAN_OTP_WRONG",
            next: "MTAN_OTP_REQUIRED",
            method: "MTAN",
        },
        Row {
            factor: Factor::App,
            kind: Kind::Login,
            start: "app-app",
            check: "/rest/public/authentication/app-2fa/offline/check/",
            wrong_status: 400,
            wrong_code: "APP_2FA_CODE_WRONG",
            next: "APP_2FA_POLLING_OR_OFFLINE_REQUIRED",
            method: "APP_2FA",
        },
        Row {
            factor: Factor::App,
            kind: Kind::SelfService,
            start: "reset-by-app",
            check: "/rest/public/self-service/app-2fa/offline/check/",
            wrong_status: 400,
            wrong_code: "APP_2FA_CODE_WRONG",
            next: "APP_2FA_POLLING_OR_OFFLINE_REQUIRED",
            method: "APP_2FA",
        },
    ]
}

async fn factors_answer_alike_in_login_and_self_service(backend: Backend) {
    let env = TestEnv::new(backend).await;
    let mut config = env.config();
    config.authenticator.poll_wait_seconds = 2;
    let app_step = || Step::App2fa(gatehouse_core::config::App2faStep::default());
    for (flow, app_id, factor) in [
        ("with-totp", "totp-app", Step::Totp(TotpStep {})),
        ("with-mtan", "mtan-app", Step::Mtan(MtanStep {})),
        ("with-app", "app-app", app_step()),
    ] {
        config
            .authentication
            .flows
            .push(AuthenticationFlow { id: flow.into(), steps: vec![Step::Password(PasswordStep {}), factor] });
        config.authentication.applications.push(app(app_id, flow, &[]));
    }
    for (flow, factor) in [
        ("reset-by-totp", Step::Totp(TotpStep {})),
        ("reset-by-mtan", Step::Mtan(MtanStep {})),
        ("reset-by-app", app_step()),
    ] {
        config.public_self_service.flows.push(PublicSelfServiceFlow {
            id: flow.into(),
            legacy_reset_entry: false,
            initialize_next_auth_flow: None,
            restrictions: Restrictions::default(),
            steps: vec![
                Step::UserIdentification(UserIdentificationStep {}),
                factor,
                Step::SetPassword(SetPasswordStep::default()),
            ],
        });
    }
    config.validate().unwrap();
    let lockout = config.lockout.clone();
    let server = env.start(config).await;

    // What each row saw for its wrong answer: status, error codes, next-step code.
    let mut observed: Vec<(Factor, WrongAnswer)> = Vec::new();
    for (i, row) in factor_rows().into_iter().enumerate() {
        // A user of its own per row, with the factor.
        let name = format!("factor{i}");
        let phone = format!("+4179000500{i}");
        let mut device = None;
        let secret = match row.factor {
            Factor::Totp => add_totp_user(&env, &server, &name, None).await,
            Factor::Mtan => {
                add_phone_user(&env, &name, &phone).await;
                String::new()
            }
            Factor::App => {
                env.add_user(&name, None, Some(PW)).await;
                device = Some(enroll(&env, &server, &name).await);
                String::new()
            }
        };

        // Up to the factor.
        let mut c = server.client();
        let r = match row.kind {
            Kind::Login => {
                assert_not_authorized(&access(&mut c, row.start).await, "PASSWORD_REQUIRED");
                c.login(&name, PW).await
            }
            Kind::SelfService => {
                c.select(row.start).await.expect(200);
                c.identify(&name).await
            }
        };
        assert_eq!(r.status, 200, "{row:?}: {}", r.body);
        assert_eq!(r.body["data"]["attributes"][row.kind.next_attribute()], row.next, "{row:?}: {}", r.body);

        // A wrong answer: retry, counted once.
        let wrong = match row.factor {
            Factor::Totp => wrong_totp(&env, &secret),
            Factor::Mtan => not_the_code(&sms_code(&env, &phone, 1).await),
            Factor::App => {
                // Offline mode first: the device would answer the challenge with its code.
                c.post(&row.check.replace("/check/", "/challenge/"), None).await.expect(200);
                "00000000".to_owned()
            }
        };
        // The same factor's counter, or in throttle mode the public flows' own one.
        let counter = lockout.counter(row.method, row.kind == Kind::SelfService).method_id;
        let before = failed_attempts(&env, &name, &counter).await;
        let r = c.post(row.check, Some(json!({ "otp": wrong }))).await;
        let next = r.body["meta"][row.kind.next_attribute()].as_str().map(str::to_owned);
        assert_eq!(
            (r.status, r.error_codes()),
            (row.wrong_status, vec![row.wrong_code.to_owned()]),
            "{row:?}: {}",
            r.body
        );
        assert_eq!(next.as_deref(), Some(row.next), "{row:?}: {}", r.body);
        assert_eq!(failed_attempts(&env, &name, &counter).await, before + 1, "{row:?}");
        observed.push((row.factor, (r.status, r.error_codes(), next)));

        // The right answer moves on.
        let r = match (row.factor, &device) {
            (Factor::App, Some((key, id))) => {
                assert_eq!(approve_all(&env, &server, &name, key, id).await, 1);
                c.post(&row.check.replace("offline/check/", "status/poll/"), None).await
            }
            (Factor::Totp, _) => c.post(row.check, Some(json!({ "otp": fresh_totp(&env, &secret) }))).await,
            _ => c.post(row.check, Some(json!({ "otp": sms_code(&env, &phone, 1).await }))).await,
        };
        assert_eq!(r.status, 200, "{row:?}: {}", r.body);
        match row.kind {
            Kind::Login => assert_eq!(r.body["data"]["attributes"], json!({}), "{row:?}: {}", r.body),
            Kind::SelfService => assert_eq!(r.next_step(), Some("NEW_PASSWORD_REQUIRED"), "{row:?}: {}", r.body),
        }
    }
    for factor in [Factor::Totp, Factor::Mtan, Factor::App] {
        let answers: Vec<&(u16, Vec<String>, Option<String>)> =
            observed.iter().filter(|(f, _)| *f == factor).map(|(_, a)| a).collect();
        assert_eq!(answers.len(), 2, "{factor:?}");
        assert_eq!(answers[0], answers[1], "{factor:?}: login and self-service answer a wrong code alike");
    }

    server.stop().await;
    env.cleanup().await;
}

// ---------------------------------------------------------------------------------------------------------------
// 6. Template overrides
// ---------------------------------------------------------------------------------------------------------------

async fn template_override_changes_the_mail(backend: Backend) {
    let env = TestEnv::new(backend).await;
    let templates = env.dir.path().join("templates");
    std::fs::create_dir_all(&templates).unwrap();
    std::fs::write(
        templates.join("password-reset-otp.en.txt"),
        "Subject: Your ACME reset code\n\nHi {{ username }}, code {{ otp }} for {{ minutes }} min.\n",
    )
    .unwrap();
    let mut config = env.config();
    config.messaging.templates_dir = Some(templates);
    config.validate().unwrap();
    let server = env.start(config).await;
    env.add_user("vera", Some("vera@example.com"), Some(PW)).await;

    let mut c = server.client();
    c.select("password-reset").await.expect(200);
    let r = c.identify("vera").await;
    r.expect(200);
    assert_eq!(r.next_step(), Some("EMAIL_OTP_REQUIRED"), "{}", r.body);
    let mails = wait_for_mails(&env.outbox(), "vera@example.com", 1).await;
    let mail = &mails[0];
    assert_eq!(mail.subject, "Your ACME reset code", "{}", mail.raw);
    // The code sits inside a sentence here (Mail::otp looks for a line holding only the code).
    let code = code_of_len(&mail.body, 8);
    assert!(mail.body.contains(&format!("Hi vera, code {code} for 10 min.")), "{}", mail.body);
    let r = c.check_otp(&code).await;
    r.expect(200);
    assert_eq!(r.next_step(), Some("NEW_PASSWORD_REQUIRED"), "{}", r.body);

    server.stop().await;
    env.cleanup().await;
}

// ---------------------------------------------------------------------------------------------------------------
// 7. Bad input on the new endpoints
// ---------------------------------------------------------------------------------------------------------------

struct Endpoint {
    path: &'static str,
    /// A JSON body of the wrong shape or type.
    wrong_type: &'static str,
    /// A well-formed body.
    valid: &'static str,
    /// The answer to the well-formed body when no flow runs.
    without_flow: (u16, &'static str),
}

fn new_endpoints() -> Vec<Endpoint> {
    let unexpected = (400, "UNEXPECTED_CALL");
    vec![
        Endpoint {
            path: "/rest/public/authentication/applications/default/access/",
            wrong_type: "[]",
            valid: "{}",
            without_flow: (401, "NOT_AUTHORIZED"),
        },
        Endpoint {
            path: "/rest/public/authentication/default-application/access/",
            wrong_type: "[]",
            valid: "{}",
            without_flow: (401, "NOT_AUTHORIZED"),
        },
        // Starts the default login, whose first step is `password`: the username call does not fit it.
        Endpoint {
            path: AUTH_IDENTIFY,
            wrong_type: "{\"username\": []}",
            valid: "{\"username\": \"nobody-here\"}",
            without_flow: unexpected,
        },
        Endpoint {
            path: SMS_CHECK,
            wrong_type: "{\"otp\": 5}",
            valid: "{\"otp\": \"12345678\"}",
            without_flow: unexpected,
        },
        Endpoint { path: SMS_RESEND, wrong_type: "[]", valid: "{}", without_flow: unexpected },
        Endpoint {
            path: "/rest/public/self-service/selection/options/retrieve",
            wrong_type: "[]",
            valid: "{}",
            without_flow: unexpected,
        },
        Endpoint {
            path: "/rest/public/self-service/selection/options/MTAN/select",
            wrong_type: "[]",
            valid: "{}",
            without_flow: unexpected,
        },
        Endpoint {
            path: PSS_OTP_CHECK,
            wrong_type: "{\"otp\": 5}",
            valid: "{\"otp\": \"123456\"}",
            without_flow: unexpected,
        },
        Endpoint {
            path: PSS_MTAN_CHECK,
            wrong_type: "{\"otp\": 5}",
            valid: "{\"otp\": \"123456\"}",
            without_flow: unexpected,
        },
        Endpoint {
            path: "/rest/public/self-service/mtan/otp/resend/",
            wrong_type: "[]",
            valid: "{}",
            without_flow: unexpected,
        },
        Endpoint {
            path: TOKEN_CHECK,
            wrong_type: "{\"token\": 5}",
            valid: "{\"token\": \"abc\"}",
            without_flow: unexpected,
        },
        Endpoint {
            path: "/rest/public/self-service/message/acknowledge/",
            wrong_type: "[]",
            valid: "{}",
            without_flow: unexpected,
        },
    ]
}

#[track_caller]
fn expect_error(what: &str, r: &Resp, status: u16, code: &str) {
    assert_eq!((r.status, r.error_codes()), (status, vec![code.to_owned()]), "{what}: {}", r.body);
    assert_json_error(r, status, code);
}

async fn bad_input_on_new_endpoints(backend: Backend) {
    let env = TestEnv::new(backend).await;
    let server = env.start(env.config()).await;
    let post = reqwest::Method::POST;
    let json_headers = [("content-type", "application/json"), ("x-same-domain", "1")];
    let no_csrf_header = [("content-type", "application/json")];
    for e in new_endpoints() {
        let mut c = server.client();
        let r = raw(&mut c, post.clone(), e.path, &json_headers, e.wrong_type).await;
        expect_error(&format!("{} with {}", e.path, e.wrong_type), &r, 400, "INVALID_REQUEST");
        let r = raw(&mut c, post.clone(), e.path, &json_headers, "{\"otp\": ").await;
        expect_error(&format!("{} with malformed JSON", e.path), &r, 400, "INVALID_JSON");
        let r = raw(&mut c, post.clone(), e.path, &no_csrf_header, e.valid).await;
        expect_error(&format!("{} without X-Same-Domain", e.path), &r, 403, "CSRF_HEADER_MISSING");
        let r = raw(&mut c, post.clone(), e.path, &json_headers, e.valid).await;
        let (status, code) = e.without_flow;
        expect_error(&format!("{} without a flow", e.path), &r, status, code);
    }
    server.stop().await;
    env.cleanup().await;
}

// ---------------------------------------------------------------------------------------------------------------
// 8. Password reset by email link, and links sent by an administrator
// ---------------------------------------------------------------------------------------------------------------

/// The token of the `n`-th reset link mailed to `to` (other mails, such as notifications, are skipped).
async fn link_token(env: &TestEnv, to: &str, n: usize) -> String {
    let deadline = Instant::now() + Duration::from_secs(10);
    let links = loop {
        let links: Vec<_> = crate::harness::mails_in(&env.outbox())
            .into_iter()
            .filter(|m| m.to.contains(to) && m.subject == "Reset your password")
            .collect();
        if links.len() >= n {
            break links;
        }
        assert!(Instant::now() < deadline, "no reset link #{n} to {to}");
        tokio::time::sleep(Duration::from_millis(25)).await;
    };
    let body = &links[n - 1].body;
    let link = body.lines().map(str::trim).find(|l| l.contains("?token=")).unwrap_or_else(|| panic!("{body}"));
    assert!(link.contains("/ui/app/self-service/flow/password-reset-continue?token="), "{link}");
    link.rsplit_once("?token=").unwrap().1.to_owned()
}

async fn continue_with(server: &TestServer, token: &str) -> (Client, Resp) {
    let mut c = server.client();
    let r = c.select("password-reset-continue").await;
    assert_eq!(r.next_step(), Some("FLOW_CONTINUATION_TOKEN_REQUIRED"), "{}", r.body);
    let r = c.post(TOKEN_CHECK, Some(json!({ "token": token }))).await;
    (c, r)
}

async fn reset_by_email_link(backend: Backend) {
    let env = TestEnv::new(backend).await;
    let server = env.start(env.config()).await;
    env.add_user("lina", Some("lina@example.com"), Some(PW)).await;

    // Initiation: the same answer for a real and an unknown user — the flow ends, a mail goes to the real one.
    let mut answers = Vec::new();
    for name in ["lina", "nobody-here"] {
        let mut c = server.client();
        c.select("password-reset-link").await.expect(200);
        let r = c.identify(name).await;
        r.expect(200);
        assert_eq!(r.body["data"]["attributes"], json!({}), "{name}: {}", r.body);
        answers.push(r.shape());
    }
    assert_eq!(answers[0], answers[1]);
    let trail = env.store().await.list_audit(1000).await.unwrap();
    assert!(trail.iter().any(|e| e.username.as_deref().is_some_and(|u| u.starts_with("unknown:"))));
    assert!(!serde_json::to_string(&trail).unwrap().contains("nobody-here"), "unknown names only as a keyed hash");
    let token = link_token(&env, "lina@example.com", 1).await;
    assert!(token.len() >= 43, "at least 256 bits: {token}");

    // A wrong token ends the continuation flow; the right one identifies the user once.
    let (_, r) = continue_with(&server, "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA").await;
    assert_refused(&r, 403, "FLOW_CONTINUATION_TOKEN_INVALID");
    let (mut c, r) = continue_with(&server, &token).await;
    r.expect(200);
    assert_eq!(r.next_step(), Some("NEW_PASSWORD_REQUIRED"), "{}", r.body);
    c.set_password(NEW_PW).await.expect(200);
    assert_eq!(server.client().login("lina", NEW_PW).await.status, 200);
    let (_, r) = continue_with(&server, &token).await;
    assert_refused(&r, 403, "FLOW_CONTINUATION_TOKEN_INVALID");

    // An expired link fails (the demo's links work 30 minutes).
    let mut c = server.client();
    c.select("password-reset-link").await.expect(200);
    c.identify("lina").await.expect(200);
    let late = link_token(&env, "lina@example.com", 2).await;
    env.clock.advance_ms(31 * 60 * 1000);
    let (_, r) = continue_with(&server, &late).await;
    assert_refused(&r, 403, "FLOW_CONTINUATION_TOKEN_INVALID");

    // An administrator sends a link from the CLI; it works like the user's own.
    let out = gatehouse(&env, &["user", "send-reset-link", "lina"]);
    assert!(ok(&out).contains("password-reset-continue"), "{}", String::from_utf8_lossy(&out.stdout));
    let admin_token = link_token(&env, "lina@example.com", 3).await;
    let (mut c, r) = continue_with(&server, &admin_token).await;
    r.expect(200);
    c.set_password("Calm-Meadow-Otter-73").await.expect(200);
    assert_eq!(server.client().login("lina", "Calm-Meadow-Otter-73").await.status, 200);
    let out = gatehouse(&env, &["user", "send-reset-link", "nobody-here"]);
    assert!(!out.status.success());

    server.stop().await;
    env.cleanup().await;
}

// ---------------------------------------------------------------------------------------------------------------
// 9. Old clients that never select, and a message to acknowledge
// ---------------------------------------------------------------------------------------------------------------

async fn legacy_entry_and_acknowledge_step(backend: Backend) {
    use gatehouse_core::config::{AcknowledgeMessageStep, EmailVerificationStep};
    let env = TestEnv::new(backend).await;
    let mut config = env.config();
    config.public_self_service.flows.push(PublicSelfServiceFlow {
        id: "reset-with-notice".into(),
        legacy_reset_entry: false,
        initialize_next_auth_flow: None,
        restrictions: Restrictions::default(),
        steps: vec![
            Step::UserIdentification(UserIdentificationStep {}),
            Step::AcknowledgeMessage(AcknowledgeMessageStep {
                message_id: Some("pss.reset.notice".into()),
                server_message: Some("Your sessions will end.".into()),
            }),
            Step::EmailIdentityVerification(EmailVerificationStep::default()),
            Step::SetPassword(SetPasswordStep::default()),
        ],
    });
    config.validate().unwrap();
    let server = env.start(config).await;
    env.add_user("olga", Some("olga@example.com"), Some(PW)).await;

    // No select: identify starts the legacy reset entry (the demo's password-reset flow).
    let mut c = server.client();
    let r = c.identify("olga").await;
    r.expect(200);
    assert_eq!(r.next_step(), Some("EMAIL_OTP_REQUIRED"), "{}", r.body);
    let otp = wait_for_mails(&env.outbox(), "olga@example.com", 1).await[0].otp();
    c.check_otp(&otp).await.expect(200);
    c.set_password(NEW_PW).await.expect(200);
    // Other calls without a flow still do not start one.
    assert_refused(&server.client().post(SMS_CHECK, Some(json!({ "otp": "12345678" }))).await, 400, "UNEXPECTED_CALL");

    // The acknowledge step shows its message and waits for the confirmation, nothing else.
    let mut c = server.client();
    c.select("reset-with-notice").await.expect(200);
    let r = c.identify("olga").await;
    r.expect(200);
    assert_eq!(r.next_step(), Some("ACKNOWLEDGE_MESSAGE_REQUIRED"), "{}", r.body);
    assert_eq!(r.body["data"]["attributes"]["messageId"], "pss.reset.notice");
    assert_eq!(r.body["data"]["attributes"]["serverMessage"], "Your sessions will end.");
    assert_refused(&c.check_otp("12345678").await, 400, "UNEXPECTED_CALL");
    let r = c.post("/rest/public/self-service/message/acknowledge/", None).await;
    r.expect(200);
    assert_eq!(r.next_step(), Some("EMAIL_OTP_REQUIRED"), "{}", r.body);
    // Mail 2 told her the password changed; mail 3 has the code.
    let otp = wait_for_mails(&env.outbox(), "olga@example.com", 3).await[2].otp();
    c.check_otp(&otp).await.expect(200);

    server.stop().await;
    env.cleanup().await;
}

// ---------------------------------------------------------------------------------------------------------------
// 10. Secret questions: set through the protected API, asked by the reset flow
// ---------------------------------------------------------------------------------------------------------------

const QUESTIONS_CHECK: &str = "/rest/public/self-service/verification/secret-questions/check/";

async fn ask_questions(server: &TestServer, name: &str) -> (Client, Resp) {
    let mut c = server.client();
    c.select("password-reset-questions").await.expect(200);
    let r = c.identify(name).await;
    (c, r)
}

async fn reset_by_secret_questions(backend: Backend) {
    let env = TestEnv::new(backend).await;
    let server = env.start(env.config()).await;
    env.add_user("quinn", None, Some(PW)).await;
    let mut me = server.client();
    me.login("quinn", PW).await.expect(200);
    let answers = [
        ("secret-question.first-pet", "Rex the Dog"),
        ("secret-question.birth-city", "Basel"),
        ("secret-question.first-school", "Dorfschule Lenk"),
    ];
    let body = |n: usize| json!({ "answers": answers[..n].iter().map(|(q, a)| json!({ "question": q, "answer": a })).collect::<Vec<_>>() });

    // Too few answers, an unknown question: refused, nothing stored.
    let r = me.post("/rest/protected/self-service/secret-questions/answers/", Some(body(2))).await;
    assert_eq!((r.status, r.error_codes()), (400, vec!["INVALID_REQUEST".to_owned()]), "{}", r.body);
    let wrong = json!({ "answers": [{ "question": "nope.q", "answer": "x" }] });
    let r = me.post("/rest/protected/self-service/secret-questions/answers/", Some(wrong)).await;
    assert_eq!(r.status, 400, "{}", r.body);
    let r = me.get("/rest/protected/self-service/secret-questions/").await;
    r.expect(200);
    assert_eq!(r.body["data"]["attributes"]["answered"], json!([]), "{}", r.body);
    let r = me.post("/rest/protected/self-service/secret-questions/answers/", Some(body(3))).await;
    r.expect(200);
    assert_eq!(r.body["data"]["attributes"]["answered"].as_array().unwrap().len(), 3, "{}", r.body);
    assert!(!r.body.to_string().contains("Basel"), "answers are never shown");
    let anonymous = server.client().post("/rest/protected/self-service/secret-questions/answers/", Some(body(3))).await;
    assert_eq!(anonymous.status, 401);

    // The reset asks two of her questions; answers count however they are cased and spaced.
    let (mut c, r) = ask_questions(&server, "quinn").await;
    r.expect(200);
    assert_eq!(r.next_step(), Some("SECRET_QUESTIONS_ANSWERS_REQUIRED"), "{}", r.body);
    let asked: Vec<String> = r.body["data"]["attributes"]["questions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|q| q.as_str().unwrap().to_owned())
        .collect();
    assert_eq!(asked.len(), 2);
    let reply: Vec<String> = asked
        .iter()
        .map(|q| answers.iter().find(|(k, _)| k == q).unwrap().1.to_uppercase().replace(' ', "  "))
        .collect();
    let r = c.post(QUESTIONS_CHECK, Some(json!({ "answers": reply }))).await;
    r.expect(200);
    assert_eq!(r.next_step(), Some("NEW_PASSWORD_REQUIRED"), "{}", r.body);
    c.set_password(NEW_PW).await.expect(200);
    assert_eq!(server.client().login("quinn", NEW_PW).await.status, 200);

    // One wrong answer set ends the flow and counts; an unknown name is asked and refused alike.
    let (mut c, real) = ask_questions(&server, "quinn").await;
    let (mut ghost, unknown) = ask_questions(&server, "nobody-here").await;
    assert_eq!((unknown.status, unknown.next_step()), (real.status, real.next_step()), "{}", unknown.body);
    assert_eq!(unknown.body["data"]["attributes"]["questions"].as_array().unwrap().len(), 2, "{}", unknown.body);
    for c in [&mut c, &mut ghost] {
        let r = c.post(QUESTIONS_CHECK, Some(json!({ "answers": ["not it", "nor this"] }))).await;
        assert_refused(&r, 403, "SECRET_ANSWERS_WRONG");
    }
    assert_eq!(failed_attempts(&env, "quinn", "SECRET_QUESTIONS:PUBLIC").await, 1);
    let r = c.post(QUESTIONS_CHECK, Some(json!({ "answers": ["a", "b"] }))).await;
    assert_eq!(r.status, 400, "the flow is over: {}", r.body);

    server.stop().await;
    env.cleanup().await;
}

// ---------------------------------------------------------------------------------------------------------------
// 11. The complex reset approved with the command-line authenticator
// ---------------------------------------------------------------------------------------------------------------

async fn complex_reset_approved_with_the_cli_authenticator(backend: Backend) {
    let env = TestEnv::new(backend).await;
    let server = env.start(config_on_port(&env)).await;
    env.add_user("pia", Some("pia@example.com"), Some(PW)).await;
    // The activation from her own session names this server (the CLI's would name the configured public URL).
    let store = enroll_cli_authenticator(&env, &server, "pia", PW).await;

    let (mut c, r) = complex_reset_past_email(&env, &server, "pia", "pia@example.com").await;
    assert_eq!(r.next_step(), Some("APP_2FA_POLLING_OR_OFFLINE_REQUIRED"), "{}", r.body);
    let number = r.body["data"]["attributes"]["number"].as_u64().unwrap();
    let requests = pending(&env, &store);
    assert_eq!(requests.len(), 1);
    assert_eq!(requests[0]["attributes"]["kind"], "password-reset", "the device shows what it approves");
    let id = requests[0]["id"].as_str().unwrap().to_owned();
    ok(&gatehouse(&env, &["authenticator", "--store", &store, "approve", &id, "--number", &number.to_string()]));
    let r = c.post("/rest/public/self-service/app-2fa/status/poll/", None).await;
    r.expect(200);
    assert_eq!(r.next_step(), Some("NEW_PASSWORD_REQUIRED"), "{}", r.body);
    c.set_password(NEW_PW).await.expect(200);
    assert_eq!(
        server.client().login("pia", NEW_PW).await.next_auth_step(),
        Some("APP_2FA_POLLING_OR_OFFLINE_REQUIRED")
    );

    server.stop().await;
    env.cleanup().await;
}
