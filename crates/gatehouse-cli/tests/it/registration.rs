//! Self-registration over HTTP: the demo's two flows end to end (codes from the outbox, CAPTCHAs solved as the
//! widget does, the CLI authenticator enrolled during registration), every validator, the CAPTCHA's single use,
//! stealth mode's equal answers and work, concurrent registrations of one address, and abandoned flows.

use std::time::{Duration, Instant};

use gatehouse_core::config::{Config, RegistrationFlow};
use gatehouse_core::registration::captcha;
use serde_json::{Value, json};

use crate::authenticator::{config_on_port, gatehouse, ok, pending};
use crate::counting::CountingStore;
use crate::harness::{Backend, Client, Resp, TestEnv, TestServer, mails_in, wait_for_mails};
use crate::on_both_backends;

on_both_backends!(
    register_with_email_then_log_in_with_the_alias,
    register_with_phone_and_authenticator_then_log_in_with_it,
    every_validator_refuses_precisely_and_changes_nothing,
    a_captcha_solution_works_once_and_not_after_it_expired,
    stealth_mode_answers_and_works_alike_for_a_taken_address,
    concurrent_registrations_of_one_address_make_one_account,
    an_abandoned_registration_leaves_no_account,
    a_registration_left_locked_is_listed_and_purged,
    bad_input_on_every_registration_call_changes_nothing,
    unique_items_and_a_link_to_set_the_password,
);

const BASE: &str = "/rest/public/user-self-registration";
const PW: &str = "Kayak-Tramway-Velvet-81";

fn config(env: &TestEnv) -> Config {
    let mut c = env.config();
    // Cheaper to solve in a debug build; the protocol is the same.
    c.self_registration.captcha.max_number = 20_000;
    c
}

async fn call(c: &mut Client, path: &str, body: Value) -> Resp {
    c.post(&format!("{BASE}/{path}"), Some(body)).await
}

/// The payload that solves the challenge an answer carries.
fn solve(r: &Resp) -> String {
    let challenge: captcha::Challenge =
        serde_json::from_value(r.body["data"]["attributes"]["captcha"].clone()).expect("a CAPTCHA challenge");
    captcha::solve(&challenge).unwrap()
}

fn error(r: &Resp) -> (u16, Vec<(String, String, String)>) {
    let errors = r.body["errors"].as_array().cloned().unwrap_or_default();
    let seen = errors
        .iter()
        .map(|e| {
            let s = |v: &Value| v.as_str().unwrap_or("").to_owned();
            (s(&e["code"]), s(&e["source"]["pointer"]), s(&e["meta"]["detail"]))
        })
        .collect();
    (r.status, seen)
}

fn err(code: &str, pointer: &str, detail: &str) -> (String, String, String) {
    (code.to_owned(), pointer.to_owned(), detail.to_owned())
}

/// Selects `flow` and sends `items` with the solved CAPTCHA.
async fn start_with_data(server: &TestServer, flow: &str, items: Value) -> Client {
    let mut c = server.client();
    let r = call(&mut c, &format!("{flow}/select/"), json!({})).await;
    r.expect(200);
    assert_eq!(r.next_step(), Some("USER_DATA_REGISTRATION_REQUIRED"));
    let mut body = items;
    body["captcha"] = json!(solve(&r));
    let r = call(&mut c, "registration/data/", body).await;
    assert_eq!(r.status, 200, "{}", r.body);
    c
}

fn new_address(email: &str) -> Value {
    json!({ "email": email, "givenname": "John", "surname": "Doe", "language": "en" })
}

async fn register_with_email_then_log_in_with_the_alias(backend: Backend) {
    let env = TestEnv::new(backend).await;
    let server = env.start(config(&env)).await;

    // Without `select`, a data call starts the default flow; its CAPTCHA comes with a fresh challenge.
    let mut c = server.client();
    let r = call(&mut c, "registration/data/", json!({ "givenname": "John" })).await;
    assert_eq!(error(&r), (400, vec![err("CAPTCHA_REQUIRED", "/captcha", "")]));
    let r = call(&mut c, "registration/captcha/", json!({})).await;
    r.expect(200);
    let solution = solve(&r);
    let r = call(&mut c, "registration/data/", json!({ "givenname": "John", "captcha": solution })).await;
    assert_eq!((r.status, r.next_step()), (200, Some("USER_DATA_REGISTRATION_REQUIRED")));
    assert_eq!(r.body["data"]["type"], "user-self-registration.session");
    // Partial updates; validate lists what is missing; continue refuses until then.
    let r = call(&mut c, "registration/validate/", json!({})).await;
    assert_eq!(error(&r), (400, vec![err("ITEM_REQUIRED", "/email", ""), err("ITEM_REQUIRED", "/surname", "")]));
    let r = call(&mut c, "registration/continue", json!({})).await;
    assert_eq!(r.status, 400);
    let r = call(&mut c, "registration/data/", json!({ "surname": "Doe", "email": "John.Doe@Example.com" })).await;
    assert_eq!((r.status, r.next_step()), (200, Some("USER_DATA_REGISTRATION_POSSIBLE")));
    call(&mut c, "registration/validate/", json!({})).await.expect(200);
    let r = call(&mut c, "registration/continue", json!({})).await;
    assert_eq!((r.status, r.next_step()), (200, Some("EMAIL_VERIFICATION_REQUIRED")), "{}", r.body);

    // A wrong code, a resend, the new code.
    let first = wait_for_mails(&env.outbox(), "John.Doe@Example.com", 1).await;
    assert_eq!(first[0].subject, "Confirm your email address");
    let r = call(&mut c, "verification/email/otp/check/", json!({ "otp": "00000000" })).await;
    assert_eq!(error(&r), (400, vec![err("EMAIL_OTP_WRONG", "/otp", "")]));
    call(&mut c, "verification/email/otp/resend/", json!({})).await.expect(200);
    let mails = wait_for_mails(&env.outbox(), "John.Doe@Example.com", 2).await;
    let r = call(&mut c, "verification/email/otp/check/", json!({ "otp": first[0].otp() })).await;
    assert_eq!(r.error_codes(), vec!["EMAIL_OTP_WRONG"], "only the latest code counts");
    let r = call(&mut c, "verification/email/otp/check/", json!({ "otp": mails[1].otp() })).await;
    assert_eq!((r.status, r.next_step()), (200, Some("PASSWORD_REGISTRATION_REQUIRED")));

    // The policy sees the data entered: a password made of the name is refused.
    let r = call(&mut c, "registration/password/", json!({ "password": "JohnDoe" })).await;
    assert_eq!(r.status, 400);
    assert!(r.error_codes().iter().all(|e| e == "PASSWORD_POLICY_VIOLATED"));
    let r = call(&mut c, "registration/password/", json!({ "password": PW })).await;
    assert_eq!((r.status, r.next_step()), (200, Some("ACKNOWLEDGE_MESSAGE_REQUIRED")));
    assert_eq!(r.body["data"]["attributes"]["messageId"], "registration.completed");

    // Stored already (persisting runs before the message), unlocked, with the role and a generated username.
    let user = env.user("john.doe@example.com").await;
    assert!(!user.locked);
    assert_eq!(user.roles, vec!["customer"]);
    assert_eq!(user.aliases, vec!["john.doe@example.com"]);
    assert_eq!(user.context.get("surname").map(String::as_str), Some("Doe"));
    assert_eq!(user.username.len(), 12);
    let r = call(&mut c, "acknowledge/", json!({})).await;
    assert_eq!((r.status, r.next_step()), (200, None));
    assert!(r.headers.get_all("set-cookie").iter().any(|v| v.to_str().unwrap().contains("Max-Age=0")));

    // The alias logs in with the chosen password (the demo's login asks no second factor without one).
    let mut browser = server.client();
    let r = browser.login("JOHN.DOE@example.com", PW).await;
    assert_eq!(r.status, 200, "{}", r.body);
    server.stop().await;
    env.cleanup().await;
}

/// The SMS texts sent to `to`, oldest first.
async fn texts_to(env: &TestEnv, to: &str, count: usize) -> Vec<String> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let mut paths: Vec<_> = std::fs::read_dir(env.outbox())
            .map(|d| d.filter_map(Result::ok).map(|e| e.path()).collect())
            .unwrap_or_default();
        paths.retain(|p: &std::path::PathBuf| p.to_string_lossy().ends_with(".sms.json"));
        paths.sort();
        let texts: Vec<String> = paths
            .iter()
            .map(|p| serde_json::from_str::<Value>(&std::fs::read_to_string(p).unwrap()).unwrap())
            .filter(|m| m["to"] == to)
            .map(|m| m["text"].as_str().unwrap().to_owned())
            .collect();
        if texts.len() >= count {
            return texts;
        }
        assert!(Instant::now() < deadline, "no SMS #{count} to {to}");
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

fn code_in(text: &str) -> String {
    text.split(|c: char| !c.is_ascii_digit()).find(|w| w.len() == 8).unwrap().to_owned()
}

async fn register_with_phone_and_authenticator_then_log_in_with_it(backend: Backend) {
    let env = TestEnv::new(backend).await;
    let mut cfg = config_on_port(&env);
    cfg.self_registration.captcha.max_number = 20_000;
    let server = env.start(cfg).await;
    let items = json!({ "username": "nora.b", "phone": "+41 79 555 01 02", "givenname": "Nora" });
    let mut c = start_with_data(&server, "register-phone", items).await;
    let r = call(&mut c, "registration/continue", json!({})).await;
    assert_eq!((r.status, r.next_step()), (200, Some("PHONE_NUMBER_VERIFICATION_REQUIRED")), "{}", r.body);
    // Stored in E.164 form, where the code went.
    let code = code_in(&texts_to(&env, "+41795550102", 1).await[0]);
    let r = call(&mut c, "verification/phone/otp/check/", json!({ "otp": code })).await;
    assert_eq!(r.next_step(), Some("PASSWORD_REGISTRATION_REQUIRED"));
    let r = call(&mut c, "registration/password/", json!({ "password": PW })).await;
    assert_eq!((r.status, r.next_step()), (200, Some("APP_2FA_ACTIVATION_REQUIRED")), "{}", r.body);
    let uri = r.body["data"]["attributes"]["activationUri"].as_str().unwrap().to_owned();
    assert!(r.body["data"]["attributes"]["qrCode"].as_str().unwrap().contains("<svg"));

    // Stored, but locked until the flow's unlock: nobody logs in half-way.
    let stored = env.user("nora.b").await;
    assert!(stored.locked);
    assert_eq!(stored.lock_reason.as_deref(), Some("LockReason.AwaitingAdminApproval"));
    assert_eq!(stored.auth_method.as_deref(), Some("APP_2FA"));
    let r = call(&mut c, "app-2fa/activation/poll/", json!({})).await;
    assert_eq!(r.next_step(), Some("APP_2FA_ACTIVATION_REQUIRED"), "waits for the device");

    let store = env.dir.path().join("authenticator.json").display().to_string();
    assert!(ok(&gatehouse(&env, &["authenticator", "--store", &store, "enroll", &uri])).contains("nora.b"));
    let r = call(&mut c, "app-2fa/activation/poll/", json!({})).await;
    assert_eq!((r.status, r.next_step()), (200, Some("ACKNOWLEDGE_MESSAGE_REQUIRED")), "{}", r.body);
    let user = env.user("nora.b").await;
    assert!(!user.locked, "the update after the unlock stored it usable");
    assert_eq!(user.context.get("phone").map(String::as_str), Some("+41795550102"));
    call(&mut c, "acknowledge/", json!({})).await.expect(200);

    // The next login asks for the authenticator enrolled during registration; the CLI approves the number.
    let mut browser = server.client();
    let r = browser.login("nora.b", PW).await;
    assert_eq!(r.next_auth_step(), Some("APP_2FA_POLLING_OR_OFFLINE_REQUIRED"), "{}", r.body);
    let number = r.body["data"]["attributes"]["number"].as_u64().unwrap().to_string();
    let requests = pending(&env, &store);
    let id = requests[0]["id"].as_str().unwrap().to_owned();
    ok(&gatehouse(&env, &["authenticator", "--store", &store, "approve", &id, "--number", &number]));
    let r = browser.post("/rest/public/authentication/app-2fa/status/poll/", None).await;
    assert_eq!((r.status, r.next_auth_step()), (200, None), "{}", r.body);
    server.stop().await;
    env.cleanup().await;
}

/// A flow with one item per validator, and a rule across two items.
fn validator_flow() -> RegistrationFlow {
    serde_json::from_value(json!({
        "id": "validators",
        "steps": [
            { "type": "user-data-registration", "items": [
                { "name": "username", "role": "username", "required": true,
                  "validators": [{ "type": "regex", "pattern": "[a-z]{3,8}" }] },
                { "name": "email", "role": "alias", "required": true, "validators": [{ "type": "email-address" }] },
                { "name": "email_again", "required": true },
                { "name": "phone", "validators": [{ "type": "phone-number" }] },
                { "name": "nick", "validators": [{ "type": "length", "min": 2, "max": 5 }] },
                { "name": "birthdate", "validators": [{ "type": "date", "min": "1900-01-01", "max": "2010-12-31" }] },
                { "name": "pin", "validators": [{ "type": "allowed-characters", "characters": "0123456789" }] }
              ],
              "validators": [{ "type": "equal", "items": ["email", "email_again"] }] },
            { "type": "user-persisting" }
        ]
    }))
    .unwrap()
}

async fn every_validator_refuses_precisely_and_changes_nothing(backend: Backend) {
    let env = TestEnv::new(backend).await;
    let mut cfg = config(&env);
    cfg.self_registration.flows.push(validator_flow());
    cfg.validate().unwrap();
    let server = env.start(cfg).await;
    env.add_user("taken", None, None).await;
    let mut c = server.client();
    call(&mut c, "validators/select/", json!({})).await.expect(200);

    let bad = [
        ("username", json!("Bob!"), "ITEM_INVALID", "REGEX"),
        ("email", json!("john@"), "ITEM_INVALID", "EMAIL_ADDRESS"),
        ("phone", json!("+41 12"), "ITEM_INVALID", "PHONE_NUMBER"),
        ("nick", json!("abcdef"), "ITEM_INVALID", "LENGTH"),
        ("birthdate", json!("2011-01-01"), "ITEM_INVALID", "DATE"),
        ("birthdate", json!("1970-02-30"), "ITEM_INVALID", "DATE"),
        ("pin", json!("12a4"), "ITEM_INVALID", "ALLOWED_CHARACTERS"),
        ("pin", json!(1234), "ITEM_INVALID", "NOT_A_STRING"),
        ("shoe_size", json!("44"), "ITEM_UNKNOWN", ""),
    ];
    for (item, value, code, detail) in bad {
        // A good value next to the bad one is not stored either.
        let mut body = if item == "nick" { json!({ "pin": "1" }) } else { json!({ "nick": "ok" }) };
        body[item] = value.clone();
        let r = call(&mut c, "registration/data/", body).await;
        assert_eq!(error(&r), (400, vec![err(code, &format!("/{item}"), detail)]), "{item} = {value}");
    }
    let r = call(&mut c, "registration/validate/", json!({})).await;
    let required = ["username", "email", "email_again"].map(|i| err("ITEM_REQUIRED", &format!("/{i}"), ""));
    assert_eq!(error(&r), (400, required.to_vec()), "nothing was stored");

    // Rules across items, and names already taken, are issues of validate and continue.
    let r = call(
        &mut c,
        "registration/data/",
        json!({ "username": "taken", "email": "a@example.com", "email_again": "b@example.com",
                "phone": "+41791234567", "birthdate": "1970-10-01", "pin": "0042", "nick": "jo" }),
    )
    .await;
    assert_eq!((r.status, r.next_step()), (200, Some("USER_DATA_REGISTRATION_REQUIRED")), "{}", r.body);
    let r = call(&mut c, "registration/continue", json!({})).await;
    assert_eq!(
        error(&r),
        (400, vec![err("ITEMS_DIFFER", "/email_again", "EQUAL"), err("ITEM_NOT_UNIQUE", "/username", "")])
    );
    let r = call(&mut c, "registration/data/", json!({ "username": "fresh", "email_again": "a@example.com" })).await;
    assert_eq!(r.next_step(), Some("USER_DATA_REGISTRATION_POSSIBLE"));
    let r = call(&mut c, "registration/continue", json!({})).await;
    assert_eq!((r.status, r.next_step()), (200, None), "{}", r.body);
    let user = env.user("a@example.com").await;
    assert_eq!(user.username, "fresh");
    assert!(user.locked, "no unlock step: stored with the initial lock reason");
    server.stop().await;
    env.cleanup().await;
}

async fn a_captcha_solution_works_once_and_not_after_it_expired(backend: Backend) {
    let env = TestEnv::new(backend).await;
    let node_a = env.start(config(&env)).await;
    let node_b = env.start(config(&env)).await;
    let data = |solution: &str| json!({ "givenname": "John", "captcha": solution });

    let mut first = node_a.client();
    let r = call(&mut first, "register/select/", json!({})).await;
    let solution = solve(&r);
    call(&mut first, "registration/data/", data(&solution)).await.expect(200);
    // The same solution in another flow, on another node: refused.
    let mut second = node_b.client();
    call(&mut second, "register/select/", json!({})).await.expect(200);
    let r = call(&mut second, "registration/data/", data(&solution)).await;
    assert_eq!(error(&r), (400, vec![err("CAPTCHA_INVALID", "/captcha", "USED")]));
    // A wrong number, garbage, and a solution past its expiry.
    let r = call(&mut second, "registration/captcha/", json!({})).await;
    let mut forged = captcha::decode(&solve(&r)).unwrap();
    forged.number = forged.number.wrapping_add(1);
    let forged = base64_json(&forged);
    let r = call(&mut second, "registration/data/", data(&forged)).await;
    assert_eq!(error(&r), (400, vec![err("CAPTCHA_INVALID", "/captcha", "WRONG")]));
    let r = call(&mut second, "registration/data/", data("bm90IGpzb24=")).await;
    assert_eq!(error(&r), (400, vec![err("CAPTCHA_INVALID", "/captcha", "MALFORMED")]));
    let r = call(&mut second, "registration/captcha/", json!({})).await;
    let late = solve(&r);
    env.clock.advance_ms(601_000);
    let r = call(&mut second, "registration/data/", data(&late)).await;
    assert_eq!(error(&r), (400, vec![err("CAPTCHA_INVALID", "/captcha", "EXPIRED")]));
    node_a.stop().await;
    node_b.stop().await;
    env.cleanup().await;
}

fn base64_json(solution: &captcha::Solution) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(serde_json::to_vec(solution).unwrap())
}

type Work = (u16, Vec<String>);

async fn work_of(store: &CountingStore, call: impl std::future::Future<Output = Resp>) -> (Resp, Work) {
    store.take();
    let r = call.await;
    let work = (r.status, store.take_foreground());
    (r, work)
}

/// Creates an account whose email is a login alias, as registration makes them.
pub(crate) async fn add_registered(env: &TestEnv, username: &str, email: &str) {
    let store = env.store().await;
    let user = gatehouse_core::user::NewUser {
        id: username.to_owned(),
        username: username.to_owned(),
        aliases: vec![email.to_owned()],
        context: [("email".to_owned(), email.to_owned())].into(),
        created_at: 1,
        ..Default::default()
    };
    let audit = gatehouse_core::audit::AuditEvent {
        id: format!("a-{username}"),
        at: 1,
        event: "user.created".into(),
        actor: "test".into(),
        user_id: None,
        username: None,
        flow_id: None,
        session_id: None,
        ip: None,
        outcome: "ok".into(),
        details: json!({}),
    };
    store.create_user(&user, &audit).await.unwrap();
}

async fn stealth_mode_answers_and_works_alike_for_a_taken_address(backend: Backend) {
    let env = TestEnv::new(backend).await;
    let (counting, server) = CountingStore::serve(&env, config(&env)).await;
    add_registered(&env, "owner", "owner@example.com").await;

    let mut seen = Vec::new();
    for email in ["owner@example.com", "newcomer@example.com"] {
        let mut c = server.client();
        let (select, w0) = work_of(&counting, call(&mut c, "register/select/", json!({}))).await;
        let mut body = new_address(email);
        body["captcha"] = json!(solve(&select));
        let (data, w1) = work_of(&counting, call(&mut c, "registration/data/", body)).await;
        let (validate, w2) = work_of(&counting, call(&mut c, "registration/validate/", json!({}))).await;
        let (cont, w3) = work_of(&counting, call(&mut c, "registration/continue", json!({}))).await;
        let (wrong, w4) =
            work_of(&counting, call(&mut c, "verification/email/otp/check/", json!({ "otp": "00000000" }))).await;
        let (resend, w5) = work_of(&counting, call(&mut c, "verification/email/otp/resend/", json!({}))).await;
        let answers: Vec<_> = [&select, &data, &validate, &cont, &wrong, &resend]
            .iter()
            .map(|r| {
                let (status, headers, mut shape) = r.observable();
                // The challenge is random; its presence and shape are what must match.
                if shape["data"]["attributes"]["captcha"].is_object() {
                    shape["data"]["attributes"]["captcha"] = json!("<challenge>");
                }
                (status, headers, shape)
            })
            .collect();
        seen.push((email, c, answers, vec![w0, w1, w2, w3, w4, w5]));
    }
    let (taken, new) = (&seen[0], &seen[1]);
    assert_eq!(taken.2, new.2, "a taken address answers like a new one");
    let enqueues = |w: &Vec<Work>| w.iter().flat_map(|(_, c)| c).filter(|c| c.contains("Enqueue")).count();
    assert_eq!(enqueues(&new.3), 2, "a code, then a new one");
    assert_eq!(taken.3, new.3, "a taken address costs the same store calls and queued messages as a new one");

    // The owner got notices, never a code; the newcomer got codes.
    let owner = wait_for_mails(&env.outbox(), "owner@example.com", 2).await;
    assert!(owner.iter().all(|m| m.subject == "Someone tried to register with your email address"), "{owner:?}");
    assert!(owner.iter().all(|m| !m.body.chars().any(|c| c.is_ascii_digit())), "no code in a notice");
    let newcomer = wait_for_mails(&env.outbox(), "newcomer@example.com", 2).await;
    // No code passes the taken address's verification, not even one that was valid elsewhere; the flow ends
    // after the allowed tries, and no second account appears.
    let mut c = seen.into_iter().next().unwrap().1;
    for attempt in 2..5 {
        let r = call(&mut c, "verification/email/otp/check/", json!({ "otp": newcomer[1].otp() })).await;
        assert_eq!(r.error_codes(), vec!["EMAIL_OTP_WRONG"], "attempt {attempt}");
    }
    let r = call(&mut c, "verification/email/otp/check/", json!({ "otp": "12345678" })).await;
    assert_eq!((r.status, r.error_codes()), (403, vec!["EMAIL_OTP_WRONG".to_owned()]));
    let users = env.store().await.list_users().await.unwrap();
    assert_eq!(users.len(), 1, "{users:?}");
    assert_eq!(mails_in(&env.outbox()).iter().filter(|m| m.to.contains("owner@")).count(), owner.len());
    server.stop().await;
    env.cleanup().await;
}

/// A flow without verification, where only the database's constraint stands between two registrations of one
/// address (the race the product's documentation warns about).
fn unverified_flow() -> RegistrationFlow {
    serde_json::from_value(json!({
        "id": "quick",
        "steps": [
            { "type": "user-data-registration", "items": [
                { "name": "email", "role": "alias", "required": true, "validators": [{ "type": "email-address" }] }
            ] },
            { "type": "username-generation", "generator": { "type": "pattern", "pattern": "[0-9]{2}" } },
            { "type": "user-unlock" },
            { "type": "user-persisting" }
        ]
    }))
    .unwrap()
}

async fn concurrent_registrations_of_one_address_make_one_account(backend: Backend) {
    let env = TestEnv::new(backend).await;
    let mut cfg = config(&env);
    cfg.self_registration.flows.push(unverified_flow());
    let nodes = [env.start(cfg.clone()).await, env.start(cfg).await];
    // Every flow gets past its data step first, so all 50 reach the insert together.
    let mut clients = Vec::new();
    for i in 0..50 {
        let mut c = nodes[i % 2].client();
        call(&mut c, "quick/select/", json!({})).await.expect(200);
        call(&mut c, "registration/data/", json!({ "email": "twin@example.com" })).await.expect(200);
        clients.push(c);
    }
    let tasks: Vec<_> = clients
        .into_iter()
        .map(|mut c| tokio::spawn(async move { call(&mut c, "registration/continue", json!({})).await }))
        .collect();
    let mut outcomes = std::collections::BTreeMap::new();
    for t in tasks {
        let r = t.await.unwrap();
        *outcomes.entry((r.status, r.error_codes())).or_insert(0) += 1;
    }
    assert_eq!(outcomes.get(&(200, vec![])), Some(&1), "{outcomes:?}");
    assert!(
        outcomes.keys().all(|(s, codes)| *s == 200
            || codes == &["REGISTRATION_CONFLICT".to_owned()]
            || codes == &["ITEM_NOT_UNIQUE".to_owned()]),
        "{outcomes:?}"
    );
    let users = env.store().await.list_users().await.unwrap();
    assert_eq!(users.len(), 1, "{users:?}");
    // A two-digit pattern collides often: generated names were drawn again, never a 5xx.
    for n in nodes {
        n.stop().await;
    }
    env.cleanup().await;
}

async fn an_abandoned_registration_leaves_no_account(backend: Backend) {
    let env = TestEnv::new(backend).await;
    let server = env.start(config(&env)).await;
    let mut c = start_with_data(&server, "register", new_address("gone@example.com")).await;
    call(&mut c, "registration/continue", json!({})).await.expect(200);
    let code = wait_for_mails(&env.outbox(), "gone@example.com", 1).await[0].otp();
    call(&mut c, "verification/email/otp/check/", json!({ "otp": code })).await.expect(200);
    // Walks away before the password: nothing is stored, and the login knows no such name.
    let store = env.store().await;
    assert!(store.list_users().await.unwrap().is_empty());
    let r = server.client().login("gone@example.com", PW).await;
    assert_eq!(r.status, 400);
    // Once the session expired and housekeeping ran, not even the draft is left.
    env.clock.advance_ms(3 * 3_600_000);
    let now = gatehouse_core::clock::Clock::now_ms(env.clock.as_ref());
    gatehouse_server::housekeeping::round(store.as_ref(), &config(&env), "test", now).await;
    let r = call(&mut c, "registration/password/", json!({ "password": PW })).await;
    assert_eq!(r.status, 400, "{}", r.body);
    assert!(store.list_users().await.unwrap().is_empty());
    server.stop().await;
    env.cleanup().await;
}

/// A flow that stored the account locked and was left before its unlock: unusable, listed, purged.
async fn a_registration_left_locked_is_listed_and_purged(backend: Backend) {
    let env = TestEnv::new(backend).await;
    let server = env.start(config(&env)).await;
    let store = env.store().await;
    let items = json!({ "username": "halfway", "phone": "+41795550177", "givenname": "Hal" });
    let mut c = start_with_data(&server, "register-phone", items).await;
    call(&mut c, "registration/continue", json!({})).await.expect(200);
    let code = code_in(&texts_to(&env, "+41795550177", 1).await[0]);
    call(&mut c, "verification/phone/otp/check/", json!({ "otp": code })).await.expect(200);
    let r = call(&mut c, "registration/password/", json!({ "password": PW })).await;
    assert_eq!(r.next_step(), Some("APP_2FA_ACTIVATION_REQUIRED"));
    let r = server.client().login("halfway", PW).await;
    assert_eq!(r.error_codes(), vec!["USER_LOCKED"], "{}", r.body);
    env.add_user("bystander", None, Some(PW)).await;
    let listed: Vec<Value> = serde_json::from_str(&ok(&gatehouse(
        &env,
        &["user", "abandoned-registrations", "--older-than-hours", "0", "--json"],
    )))
    .unwrap();
    assert_eq!(listed.iter().map(|u| u["username"].as_str().unwrap()).collect::<Vec<_>>(), vec!["halfway"]);
    ok(&gatehouse(&env, &["user", "abandoned-registrations", "--older-than-hours", "0", "--purge"]));
    let left: Vec<String> = store.list_users().await.unwrap().into_iter().map(|u| u.username).collect();
    assert_eq!(left, vec!["bystander"]);
    server.stop().await;
    env.cleanup().await;
}

async fn bad_input_on_every_registration_call_changes_nothing(backend: Backend) {
    let env = TestEnv::new(backend).await;
    let server = env.start(config(&env)).await;
    let r = call(&mut server.client(), "no-such-flow/select/", json!({})).await;
    assert_eq!(r.status, 404, "{}", r.body);
    let mut c = start_with_data(&server, "register", json!({ "givenname": "John" })).await;
    let json_headers = [("content-type", "application/json"), ("x-same-domain", "1")];
    let many: serde_json::Map<String, Value> = (0..65).map(|i| (format!("i{i}"), json!("x"))).collect();
    let cases: Vec<(&str, String, &str)> = vec![
        ("registration/data/", "{\"givenname\": ".into(), "INVALID_JSON"),
        ("registration/data/", "[1]".into(), "INVALID_REQUEST"),
        ("registration/data/", "\"John\"".into(), "INVALID_REQUEST"),
        ("registration/data/", "{\"captcha\": 5}".into(), "INVALID_REQUEST"),
        ("registration/data/", Value::Object(many).to_string(), "INVALID_REQUEST"),
        ("registration/validate/", "{\"x\": 1}".into(), "INVALID_REQUEST"),
        ("registration/continue", "[]".into(), "INVALID_REQUEST"),
        ("registration/captcha/", "{\"x\": 1}".into(), "INVALID_REQUEST"),
        ("verification/email/otp/check/", "{\"otp\": 5}".into(), "INVALID_REQUEST"),
        ("verification/email/otp/check/", format!("{{\"otp\": \"{}\"}}", "9".repeat(65)), "INVALID_REQUEST"),
        ("verification/email/otp/resend/", "{\"x\": 1}".into(), "INVALID_REQUEST"),
        ("verification/phone/otp/check/", "{}".into(), "INVALID_REQUEST"),
        ("registration/password/", "{\"password\": null}".into(), "INVALID_REQUEST"),
        ("registration/password/", format!("{{\"password\": \"{}\"}}", "x".repeat(1025)), "INVALID_REQUEST"),
        ("app-2fa/activation/poll/", "{\"x\": 1}".into(), "INVALID_REQUEST"),
        ("acknowledge/", "{\"x\": 1}".into(), "INVALID_REQUEST"),
        // Well-formed calls of another step.
        ("registration/password/", json!({ "password": PW }).to_string(), "UNEXPECTED_CALL"),
        ("verification/email/otp/check/", json!({ "otp": "12345678" }).to_string(), "UNEXPECTED_CALL"),
        ("app-2fa/activation/poll/", "{}".into(), "UNEXPECTED_CALL"),
    ];
    for (path, body, code) in cases {
        let r =
            crate::bad_input::raw(&mut c, reqwest::Method::POST, &format!("{BASE}/{path}"), &json_headers, &body).await;
        crate::bad_input::assert_json_error(&r, 400, code);
    }
    // The flow is where it was, with what it had.
    let r = call(&mut c, "registration/validate/", json!({})).await;
    assert_eq!(error(&r), (400, vec![err("ITEM_REQUIRED", "/email", ""), err("ITEM_REQUIRED", "/surname", "")]));
    let r = call(&mut c, "registration/data/", json!({ "email": "still@example.com", "surname": "Doe" })).await;
    assert_eq!(r.next_step(), Some("USER_DATA_REGISTRATION_POSSIBLE"));
    assert!(env.store().await.list_users().await.unwrap().is_empty());
    server.stop().await;
    env.cleanup().await;
}

/// A flow that takes a phone number unique across accounts, stores the account and mails a link into the
/// password-reset continuation flow, where the new user sets a password.
fn link_flow() -> RegistrationFlow {
    serde_json::from_value(json!({
        "id": "by-link",
        "additional_unique_items": ["phone"],
        "steps": [
            { "type": "user-data-registration", "items": [
                { "name": "email", "role": "alias", "required": true, "validators": [{ "type": "email-address" }] },
                { "name": "phone", "required": true, "validators": [{ "type": "phone-number" }] }
            ] },
            { "type": "username-generation" },
            { "type": "user-unlock" },
            { "type": "user-persisting" },
            { "type": "send-email-link", "target_flow": "password-reset-continue" }
        ]
    }))
    .unwrap()
}

async fn unique_items_and_a_link_to_set_the_password(backend: Backend) {
    let env = TestEnv::new(backend).await;
    let mut cfg = config(&env);
    cfg.self_registration.flows.push(link_flow());
    cfg.validate().unwrap();
    let server = env.start(cfg).await;

    let mut c = server.client();
    call(&mut c, "by-link/select/", json!({})).await.expect(200);
    call(&mut c, "registration/data/", json!({ "email": "first@example.com", "phone": "+41 79 555 03 03" })).await;
    let r = call(&mut c, "registration/continue", json!({})).await;
    assert_eq!((r.status, r.next_step()), (200, None), "{}", r.body);

    // The same number again: told at the data step (this flow has no stealth mode), and no account appears.
    let mut again = server.client();
    call(&mut again, "by-link/select/", json!({})).await.expect(200);
    call(&mut again, "registration/data/", json!({ "email": "second@example.com", "phone": "+41795550303" })).await;
    let r = call(&mut again, "registration/continue", json!({})).await;
    assert_eq!(error(&r), (400, vec![err("ITEM_NOT_UNIQUE", "/phone", "")]));
    assert_eq!(env.store().await.list_users().await.unwrap().len(), 1);

    // The link continues in the reset flow: the new account gets its first password there, and logs in with it.
    let mail = wait_for_mails(&env.outbox(), "first@example.com", 1).await.remove(0);
    let token = mail
        .body
        .split("token=")
        .nth(1)
        .unwrap()
        .split(|ch: char| !(ch.is_ascii_alphanumeric() || ch == '-' || ch == '_'))
        .next()
        .unwrap()
        .to_owned();
    let mut browser = server.client();
    browser.select("password-reset-continue").await.expect(200);
    let r =
        browser.post("/rest/public/self-service/flow-continuation/token/check/", Some(json!({ "token": token }))).await;
    assert_eq!(r.next_step(), Some("NEW_PASSWORD_REQUIRED"), "{}", r.body);
    browser.set_password(PW).await.expect(200);
    server.client().login("first@example.com", PW).await.expect(200);
    server.stop().await;
    env.cleanup().await;
}
