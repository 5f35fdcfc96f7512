//! The enumeration suite: for every enumeration-safe public flow and every login configuration of the demo (and
//! login with enumeration protection on), a real user, an unknown name, a locked user and an invalid user are
//! compared call by call: status, headers (cookie attributes, not values), the body with ids and timestamps
//! blanked, the store calls the server made and the jobs it queued. Whatever differs tells an attacker who has
//! an account. Timing is measured by `gatehouse-bench --scenario enumeration`, not here.

use gatehouse_core::config::{Config, Restrictions, Step};
use gatehouse_core::ports::Effect;
use serde_json::{Value, json};

use crate::counting::CountingStore;
use crate::harness::{Backend, Client, Resp, TestEnv, TestServer};
use crate::on_both_backends;

on_both_backends!(public_flows_treat_every_kind_of_account_alike, login_treats_every_kind_of_account_alike);

const PW: &str = "Old-Cobalt-Lantern-1";

/// The kinds of accounts an attacker wants to tell apart.
const KINDS: [&str; 4] = ["real", "unknown", "locked", "invalid"];

/// What a caller sees of one call, plus the work it cost the server.
#[derive(Debug, Clone, PartialEq)]
struct Seen {
    call: String,
    status: u16,
    headers: Vec<(String, String)>,
    body: Value,
    store_calls: Vec<String>,
}

/// A name for each kind of account, each with everything the demo's flows ask for (address, phone, secret
/// answers), so that a difference can only come from the account's state.
async fn accounts(env: &TestEnv, config: &Config) -> Vec<(&'static str, String)> {
    let store = env.store().await;
    let key = gatehouse_core::crypto::ServerKey::from_base64(&env.key).unwrap();
    let mut names = Vec::new();
    for kind in KINDS {
        let name = format!("{kind}-account");
        names.push((kind, name.clone()));
        if kind == "unknown" {
            continue;
        }
        let user = env.add_user(&name, Some(&format!("{name}@example.com")), Some(PW)).await;
        let cfg = &config.public_self_service.secret_questions;
        let answers: Vec<(String, String)> =
            cfg.questions.iter().take(cfg.min_answers).map(|q| (q.clone(), format!("answer to {q}"))).collect();
        let mut effects = vec![
            gatehouse_core::secret_answers::set_answers(cfg, &key, &user.id, &answers, 0).unwrap(),
            Effect::SetContextItem {
                user_id: user.id.clone(),
                key: "phone".into(),
                value: Some("+41790000001".into()),
                at: 0,
            },
        ];
        match kind {
            "locked" => effects.push(Effect::Lock {
                user_id: user.id.clone(),
                reason: "LockReason.InitiatedByAdmin".into(),
                at: 0,
                replace: true,
            }),
            "invalid" => effects.push(Effect::SetValidity {
                user_id: user.id.clone(),
                valid_from: None,
                valid_until: Some(gatehouse_core::clock::Clock::now_ms(&*env.clock) - 3_600_000),
                at: 0,
            }),
            _ => {}
        }
        store.apply(&effects).await.unwrap();
    }
    names
}

/// Runs one call and records what it showed and cost.
async fn observe(store: &CountingStore, call: &str, request: impl std::future::Future<Output = Resp>) -> (Seen, Resp) {
    store.take();
    let r = request.await;
    let store_calls = store.take_foreground();
    let (status, headers, mut body) = r.observable();
    // The questions asked are drawn at random for everybody: their number and form count, not which ones.
    if let Some(questions) = body.pointer_mut("/data/attributes/questions").and_then(Value::as_array_mut) {
        questions.iter_mut().for_each(|q| *q = json!(q.as_str().map(|s| s.split('.').next().unwrap_or(s))));
    }
    (Seen { call: call.to_owned(), status, headers, body, store_calls }, r)
}

/// The enumeration-safe public flows of a configuration: identification first, every feedback flag off.
fn safe_public_flows(config: &Config) -> Vec<String> {
    config
        .public_self_service
        .flows
        .iter()
        .filter(|f| matches!(f.steps.first(), Some(Step::UserIdentification(_))))
        .filter(|f| match &f.restrictions {
            Restrictions::PasswordReset(r) => {
                !(r.nonexistent_user_feedback || r.invalid_user_feedback || r.locked_user_feedback)
            }
            Restrictions::SelfUnlock(r) => {
                !(r.nonexistent_user_feedback
                    || r.invalid_user_feedback
                    || r.locked_user_feedback
                    || r.too_many_unlocks_feedback)
            }
        })
        .map(|f| f.id.clone())
        .collect()
}

/// Walks one public flow as far as an attacker who knows a name can: identify, then every call the first
/// verification step offers, with wrong answers.
async fn walk_public_flow(store: &CountingStore, server: &TestServer, flow: &str, name: &str) -> Vec<Seen> {
    let mut c = server.client();
    c.select(flow).await.expect(200);
    let (seen, r) = observe(store, "identify", c.identify(name)).await;
    let mut all = vec![seen];
    let path = "/rest/public/self-service";
    let calls: Vec<(&str, String, Option<Value>)> = match r.next_step() {
        Some("EMAIL_OTP_REQUIRED") => vec![
            ("email code", format!("{path}/verification/email/otp/check/"), Some(json!({ "otp": "00000000" }))),
            ("email resend", format!("{path}/verification/email/otp/resend/"), None),
            ("email code again", format!("{path}/verification/email/otp/check/"), Some(json!({ "otp": "00000000" }))),
        ],
        Some("SMS_OTP_REQUIRED") => vec![
            ("sms code", format!("{path}/verification/sms/otp/check/"), Some(json!({ "otp": "00000000" }))),
            ("sms resend", format!("{path}/verification/sms/otp/resend/"), None),
            ("sms code again", format!("{path}/verification/sms/otp/check/"), Some(json!({ "otp": "00000000" }))),
        ],
        Some("SECRET_QUESTIONS_ANSWERS_REQUIRED") => {
            let asked = r.body["data"]["attributes"]["questions"].as_array().map_or(0, Vec::len);
            let answers = json!(vec!["not the answer"; asked]);
            vec![
                (
                    "answers",
                    format!("{path}/verification/secret-questions/check/"),
                    Some(json!({ "answers": answers })),
                ),
                (
                    "answers again",
                    format!("{path}/verification/secret-questions/check/"),
                    Some(json!({ "answers": answers })),
                ),
            ]
        }
        // The flow is over (an email link was sent, or not): nothing more to call.
        None => vec![],
        Some(other) => panic!("flow `{flow}`: the suite does not know how to answer {other}; extend it"),
    };
    for (label, url, body) in calls {
        let (seen, _) = observe(store, label, c.post(&url, body)).await;
        all.push(seen);
    }
    all
}

fn assert_alike(what: &str, seen: &[(&str, Vec<Seen>)]) {
    let (reference_kind, reference) = &seen[0];
    for (kind, calls) in &seen[1..] {
        assert_eq!(calls.len(), reference.len(), "{what}: `{kind}` made other calls than `{reference_kind}`");
        for (a, b) in calls.iter().zip(reference) {
            assert_eq!(a, b, "{what}: `{kind}` differs from `{reference_kind}` at `{}`", a.call);
        }
    }
}

async fn public_flows_treat_every_kind_of_account_alike(backend: Backend) {
    let env = TestEnv::new(backend).await;
    let config = env.config();
    let flows = safe_public_flows(&config);
    // The demo's enumeration-safe flows; a new one is covered without a change here.
    for f in [
        "password-reset",
        "password-reset-sms",
        "password-reset-complex",
        "password-reset-link",
        "password-reset-questions",
    ] {
        assert!(flows.iter().any(|g| g == f), "{f} is not enumeration-safe any more: {flows:?}");
    }
    let names = accounts(&env, &config).await;
    let (store, server) = CountingStore::serve(&env, config).await;
    for flow in &flows {
        let mut seen = Vec::new();
        for (kind, name) in &names {
            seen.push((*kind, walk_public_flow(&store, &server, flow, name).await));
        }
        assert!(seen[0].1.iter().all(|s| s.status < 500), "{flow}: {:?}", seen[0].1);
        assert_alike(&format!("public flow `{flow}`"), &seen);
        // The real user's walk did real work (a lookup, a queued job), so the comparison means something. Its
        // first call after select writes the flow's row (a started flow lives in its cookie until then).
        let identify = &seen[0].1[0].store_calls;
        for call in ["find_user_by_login", "create_flow_session"] {
            assert!(identify.iter().any(|c| c == call), "{flow}: {call} missing from {identify:#?}");
        }
    }
    server.stop().await;
    env.cleanup().await;
}

/// A wrong password for each kind of account, on a fresh client (a flow of its own) each time.
async fn walk_login(store: &CountingStore, server: &TestServer, name: &str) -> Vec<Seen> {
    let mut c: Client = server.client();
    let (first, _) = observe(store, "password", c.login(name, "Wrong-Password-99")).await;
    let (second, _) = observe(store, "password again", c.login(name, "Wrong-Password-98")).await;
    vec![first, second]
}

async fn login_treats_every_kind_of_account_alike(backend: Backend) {
    let env = TestEnv::new(backend).await;
    // The demo's login (enumeration protection off): a locked or invalid user is told so, as the product does,
    // but a real user's wrong password and an unknown name must look alike.
    let config = env.config();
    assert!(!config.authentication.enumeration_protection);
    let names = accounts(&env, &config).await;
    let (store, server) = CountingStore::serve(&env, config.clone()).await;
    let mut seen = Vec::new();
    for (kind, name) in names.iter().filter(|(k, _)| matches!(*k, "real" | "unknown")) {
        seen.push((*kind, walk_login(&store, &server, name).await));
    }
    assert_eq!(seen[0].1[0].status, 400, "{:?}", seen[0].1[0]);
    assert_alike("login without enumeration protection", &seen);
    server.stop().await;

    // With enumeration protection every kind of account answers alike.
    let mut config = config;
    config.authentication.enumeration_protection = true;
    config.authentication.response_time_ms = 0;
    let (store, server) = CountingStore::serve(&env, config).await;
    let mut seen = Vec::new();
    for (kind, name) in &names {
        seen.push((*kind, walk_login(&store, &server, name).await));
    }
    assert_eq!(seen[0].1[0].status, 403, "{:?}", seen[0].1[0]);
    assert_alike("login with enumeration protection", &seen);
    server.stop().await;
    env.cleanup().await;
}
