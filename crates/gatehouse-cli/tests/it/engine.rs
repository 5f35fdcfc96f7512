//! The flow engine in-process (no sockets): every step kind driven through `gatehouse_core::flow` with a fixed
//! clock and seeded randomness against a real store — enter, a right answer, a wrong one, a call the step does
//! not take, expiry, and stealth mode. The effects of each turn are written as the server would write them.

use std::sync::Arc;

use gatehouse_core::clock::MockClock;
use gatehouse_core::config::{Config, FlowDef, Step};
use gatehouse_core::crypto::{HashParams, Passwords, ServerKey, totp};
use gatehouse_core::flow::session::{FlowState, SessionStatus};
use gatehouse_core::flow::{self, Action, FlowDeps, FlowKind, Outcome, TOTP_SEAL_CONTEXT, Turn};
use gatehouse_core::messages::Templates;
use gatehouse_core::outbox;
use gatehouse_core::ports::{Channel, Effect, Store};
use gatehouse_core::random::SeededRandom;
use rand_chacha::rand_core::SeedableRng;

use crate::harness::{Backend, TestEnv};
use crate::on_both_backends;
use crate::second_factor::PW;

on_both_backends!(
    identification_and_email_code,
    sms_codes_and_secret_questions,
    login_steps,
    selection_roles_and_the_authenticator,
    links_letters_and_messages,
    username_unlock_and_acknowledge,
);

const T0: i64 = 1_800_000_000_000;

/// Everything the engine needs, with a clock that moves only when told and a seeded generator.
struct Engine {
    env: TestEnv,
    config: Config,
    store: Arc<dyn Store>,
    hasher: Passwords,
    clock: MockClock,
    random: SeededRandom,
    key: ServerKey,
    templates: Templates,
}

/// A flow being driven: its kind and id, state and status.
struct Run {
    kind: FlowKind,
    flow: String,
    id: String,
    state: FlowState,
    status: SessionStatus,
}

impl Engine {
    async fn new(backend: Backend) -> Self {
        let env = TestEnv::new(backend).await;
        let config = env.config();
        let store = env.store().await;
        Self {
            config,
            store,
            hasher: Passwords::new(HashParams { memory_kib: 1024, iterations: 1, parallelism: 1 }).unwrap(),
            clock: MockClock::new(T0),
            random: SeededRandom::new(rand_chacha::ChaCha20Rng::seed_from_u64(7)),
            key: ServerKey::from_bytes(&[42u8; 32]).unwrap(),
            templates: Templates::builtin(),
            env,
        }
    }

    fn deps(&self) -> FlowDeps<'_> {
        FlowDeps {
            config: &self.config,
            store: self.store.as_ref(),
            hasher: &self.hasher,
            clock: &self.clock,
            random: &self.random,
            key: &self.key,
            templates: &self.templates,
        }
    }

    fn def(&self, kind: FlowKind, flow: &str) -> FlowDef<'_> {
        self.config.flow(kind, flow).unwrap_or_else(|| panic!("no {kind:?} flow {flow}"))
    }

    /// Writes a turn's effects (as the commit would) and keeps its state.
    async fn apply(&self, run: &mut Run, turn: Turn) -> Turn {
        self.store.apply(&turn.effects).await.unwrap();
        run.state = turn.state.clone();
        run.status = turn.status;
        turn
    }

    async fn start(&self, kind: FlowKind, flow: &str, application: Option<&str>) -> (Run, Turn) {
        let mut run = Run {
            kind,
            flow: flow.into(),
            id: format!("run-{flow}"),
            state: FlowState::default(),
            status: SessionStatus::Active,
        };
        let turn = flow::start(&self.deps(), self.def(kind, flow), &run.id, None, application, None).await.unwrap();
        let turn = self.apply(&mut run, turn).await;
        (run, turn)
    }

    async fn call(&self, run: &mut Run, action: Action) -> Turn {
        assert_eq!(run.status, SessionStatus::Active, "the flow is over");
        let def = self.def(run.kind, &run.flow);
        let turn = flow::handle(&self.deps(), def, &run.id, None, run.state.clone(), action).await.unwrap();
        self.apply(run, turn).await
    }

    /// Opens every queued message (as the delivery worker would) and returns (recipient, body) of those to `to`.
    async fn messages_to(&self, to: &str) -> Vec<String> {
        let claimed = self.store.claim_outbox(self.clock_now() + 1, self.clock_now() + 60_000, 100).await.unwrap();
        let mut bodies = Vec::new();
        for c in claimed {
            let envelope = outbox::open(&self.key, &c.message).unwrap();
            self.store.mark_delivered(std::slice::from_ref(&c.message.id), self.clock_now()).await.unwrap();
            if envelope.to.contains(to) {
                bodies.push(envelope.body);
            }
        }
        bodies
    }

    fn clock_now(&self) -> i64 {
        gatehouse_core::clock::Clock::now_ms(&self.clock)
    }

    async fn user(&self, name: &str, email: Option<&str>) -> String {
        self.env.add_user(name, email, Some(PW)).await.id
    }

    async fn set_item(&self, user_id: &str, key: &str, value: &str) {
        let effect =
            Effect::SetContextItem { user_id: user_id.into(), key: key.into(), value: Some(value.into()), at: T0 };
        self.store.apply(&[effect]).await.unwrap();
    }

    async fn failed(&self, name: &str, method: &str) -> i64 {
        self.env.user(name).await.failed_attempts.get(method).copied().unwrap_or(0)
    }
}

/// The next step of an outcome, or `None` when the flow completed.
fn next(turn: &Turn) -> Option<&'static str> {
    match &turn.outcome {
        Outcome::Continue(n) => n.map(|n| n.as_str()),
        other => panic!("expected to continue, got {other:?}"),
    }
}

fn retry(turn: &Turn) -> (&'static str, Vec<&'static str>) {
    match &turn.outcome {
        Outcome::Retry { next, errors } => (next.as_str(), errors.iter().map(|e| e.code.as_str()).collect()),
        other => panic!("expected a retry, got {other:?}"),
    }
}

fn ended(turn: &Turn) -> Vec<&'static str> {
    match &turn.outcome {
        Outcome::Terminated(errors) => errors.iter().map(|e| e.code.as_str()).collect(),
        other => panic!("expected the flow to end, got {other:?}"),
    }
}

fn code_in(text: &str, len: usize) -> String {
    text.split(|c: char| !c.is_ascii_alphanumeric())
        .find(|w| w.len() == len && w.chars().all(|c| c.is_ascii_digit()))
        .unwrap()
        .to_owned()
}

/// A call the current step does not take changes nothing.
async fn unexpected(e: &Engine, run: &mut Run, action: Action) {
    let before = run.state.clone();
    let turn = e.call(run, action).await;
    assert_eq!(turn.outcome, Outcome::Unexpected);
    assert!(turn.effects.is_empty(), "{:?}", turn.effects);
    assert_eq!(run.state, before);
}

async fn identification_and_email_code(backend: Backend) {
    let e = Engine::new(backend).await;
    e.user("ines", Some("ines@example.com")).await;
    let pss = FlowKind::PublicSelfService;

    // user-identification: enter, a call it does not take, then a real user and an unknown one alike.
    let (mut real, turn) = e.start(pss, "password-reset", None).await;
    assert_eq!(next(&turn), Some("USERNAME_REQUIRED"));
    unexpected(&e, &mut real, Action::CheckEmailOtp { otp: "12345678".into() }).await;
    let turn = e.call(&mut real, Action::Identify { username: "Ines".into() }).await;
    assert_eq!(next(&turn), Some("EMAIL_OTP_REQUIRED"));
    assert!(!real.state.stealth);
    let (mut ghost, _) = e.start(pss, "password-reset", None).await;
    let ghost_turn = e.call(&mut ghost, Action::Identify { username: "nobody".into() }).await;
    assert_eq!(ghost_turn.outcome, turn.outcome, "the same answer");
    assert!(ghost.state.stealth);
    // Equal work: one job each — a mail for the real user, a job with nothing to send for the ghost.
    let jobs = |t: &Turn| -> Vec<Channel> {
        t.effects.iter().filter_map(|x| if let Effect::Enqueue(m) = x { Some(m.channel) } else { None }).collect()
    };
    assert_eq!((jobs(&turn), jobs(&ghost_turn)), (vec![Channel::Email], vec![Channel::Discard]));

    // email-identity-verification: wrong, expired, then right after a resend.
    let code = code_in(&e.messages_to("ines@example.com").await[0], 8);
    // Stealth: no answer passes — not even the real user's code — and the third wrong one ends the flow.
    for _ in 0..2 {
        let turn = e.call(&mut ghost, Action::CheckEmailOtp { otp: code.clone() }).await;
        assert_eq!(retry(&turn).1, vec!["EMAIL_OTP_WRONG"]);
    }
    assert_eq!(ended(&e.call(&mut ghost, Action::CheckEmailOtp { otp: code.clone() }).await), vec!["EMAIL_OTP_WRONG"]);
    let turn = e.call(&mut real, Action::CheckEmailOtp { otp: "00000000".into() }).await;
    assert_eq!(retry(&turn), ("EMAIL_OTP_REQUIRED", vec!["EMAIL_OTP_WRONG"]));
    assert_eq!(e.failed("ines", "EMAIL_OTP:PUBLIC").await, 1);
    e.clock.advance_ms(601_000);
    let turn = e.call(&mut real, Action::CheckEmailOtp { otp: code }).await;
    assert_eq!(retry(&turn), ("EMAIL_OTP_REQUIRED", vec!["EMAIL_OTP_EXPIRED"]));
    let turn = e.call(&mut real, Action::ResendEmailOtp).await;
    assert_eq!(next(&turn), Some("EMAIL_OTP_REQUIRED"));
    let code = code_in(&e.messages_to("ines@example.com").await[0], 8);
    let turn = e.call(&mut real, Action::CheckEmailOtp { otp: code }).await;
    assert_eq!(next(&turn), Some("NEW_PASSWORD_REQUIRED"));
    assert!(real.state.verified);

    // set-password: a policy violation retries, a good password ends the flow (the notification follows).
    let turn = e.call(&mut real, Action::SetPassword { new_password: "short".into() }).await;
    let Outcome::Retry { next: step, errors } = &turn.outcome else { panic!("{:?}", turn.outcome) };
    assert_eq!(step.as_str(), "NEW_PASSWORD_REQUIRED");
    assert!(errors.iter().all(|x| x.code.as_str() == "PASSWORD_POLICY_VIOLATED"));
    assert!(errors.iter().any(|x| x.detail == Some("TOO_SHORT")), "{errors:?}");
    let turn = e.call(&mut real, Action::SetPassword { new_password: "Quiet-Harbor-Gull-58".into() }).await;
    assert_eq!(next(&turn), None);
    assert_eq!(real.status, SessionStatus::Completed);
    assert!(e.messages_to("ines@example.com").await[0].contains("password of your account was changed"));
    e.env.cleanup().await;
}

async fn sms_codes_and_secret_questions(backend: Backend) {
    let e = Engine::new(backend).await;
    let pss = FlowKind::PublicSelfService;
    let uid = e.user("sami", None).await;
    e.set_item(&uid, "phone", "+41790000100").await;

    // sms-identity-verification
    let (mut run, _) = e.start(pss, "password-reset-sms", None).await;
    let turn = e.call(&mut run, Action::Identify { username: "sami".into() }).await;
    assert_eq!(next(&turn), Some("SMS_OTP_REQUIRED"));
    unexpected(&e, &mut run, Action::CheckEmailOtp { otp: "1".into() }).await;
    let code = code_in(&e.messages_to("+41790000100").await[0], 8);
    let turn = e.call(&mut run, Action::CheckSmsOtp { otp: "00000000".into() }).await;
    assert_eq!(retry(&turn), ("SMS_OTP_REQUIRED", vec!["SMS_OTP_WRONG"]));
    e.clock.advance_ms(301_000);
    assert_eq!(retry(&e.call(&mut run, Action::CheckSmsOtp { otp: code.clone() }).await).1, vec!["SMS_OTP_EXPIRED"]);
    e.call(&mut run, Action::ResendSmsOtp).await;
    let code = code_in(&e.messages_to("+41790000100").await[0], 8);
    assert_eq!(next(&e.call(&mut run, Action::CheckSmsOtp { otp: code }).await), Some("NEW_PASSWORD_REQUIRED"));
    // Stealth: a user without a phone gets the same step and no SMS.
    e.user("nophone", None).await;
    let (mut ghost, _) = e.start(pss, "password-reset-sms", None).await;
    let turn = e.call(&mut ghost, Action::Identify { username: "nophone".into() }).await;
    assert_eq!(next(&turn), Some("SMS_OTP_REQUIRED"));
    assert!(ghost.state.stealth);
    let jobs: Vec<Channel> =
        turn.effects.iter().filter_map(|x| if let Effect::Enqueue(m) = x { Some(m.channel) } else { None }).collect();
    assert_eq!(jobs, vec![Channel::Discard], "a job with nothing to send where the SMS would be");

    // secret-questions-identity-verification
    let cfg = &e.config.public_self_service.secret_questions;
    let answers: Vec<(String, String)> =
        cfg.questions.iter().take(3).enumerate().map(|(i, q)| (q.clone(), format!("answer number {i}"))).collect();
    let effect = gatehouse_core::secret_answers::set_answers(cfg, &e.key, &uid, &answers, T0).unwrap();
    e.store.apply(&[effect]).await.unwrap();
    let (mut run, _) = e.start(pss, "password-reset-questions", None).await;
    let turn = e.call(&mut run, Action::Identify { username: "sami".into() }).await;
    assert_eq!(next(&turn), Some("SECRET_QUESTIONS_ANSWERS_REQUIRED"));
    let asked: Vec<String> = serde_json::from_value(turn.attributes["questions"].clone()).unwrap();
    unexpected(&e, &mut run, Action::ResendSmsOtp).await;
    let reply: Vec<String> =
        asked.iter().map(|q| answers.iter().find(|(k, _)| k == q).unwrap().1.to_uppercase()).collect();
    assert_eq!(
        next(&e.call(&mut run, Action::CheckSecretAnswers { answers: reply }).await),
        Some("NEW_PASSWORD_REQUIRED")
    );
    let (mut wrong, _) = e.start(pss, "password-reset-questions", None).await;
    e.call(&mut wrong, Action::Identify { username: "sami".into() }).await;
    let turn = e.call(&mut wrong, Action::CheckSecretAnswers { answers: vec!["x".into(), "y".into()] }).await;
    assert_eq!(ended(&turn), vec!["SECRET_ANSWERS_WRONG"]);
    assert_eq!(e.failed("sami", "SECRET_QUESTIONS:PUBLIC").await, 1);
    let (mut ghost, _) = e.start(pss, "password-reset-questions", None).await;
    let turn = e.call(&mut ghost, Action::Identify { username: "nobody".into() }).await;
    assert_eq!(next(&turn), Some("SECRET_QUESTIONS_ANSWERS_REQUIRED"));
    assert!(ghost.state.stealth);
    e.env.cleanup().await;
}

async fn login_steps(backend: Backend) {
    let e = Engine::new(backend).await;
    let auth = FlowKind::Authentication;
    let uid = e.user("lars", None).await;

    // password: enter, wrong (counted), a call it does not take, right → no factor: logged in.
    let (mut run, turn) = e.start(auth, "login", Some("default")).await;
    assert_eq!(next(&turn), Some("PASSWORD_REQUIRED"));
    unexpected(&e, &mut run, Action::CheckTotp { otp: "123456".into() }).await;
    let login = |p: &str| Action::CheckPassword { username: Some("lars".into()), password: p.into() };
    let turn = e.call(&mut run, login("nope")).await;
    assert_eq!(retry(&turn), ("PASSWORD_REQUIRED", vec!["USERNAME_PASSWORD_WRONG"]));
    assert_eq!(e.failed("lars", "PASSWORD").await, 1);
    let turn = e.call(&mut run, login(PW)).await;
    assert_eq!(next(&turn), None);
    assert!(turn.session_token.is_some() && run.status == SessionStatus::Completed);
    assert_eq!(e.failed("lars", "PASSWORD").await, 0, "a success resets the counter");

    // totp: with a confirmed credential the selection goes straight to OTP_REQUIRED.
    let secret = totp::new_secret(&e.random);
    let sealed_secret = e.key.seal(&e.random, TOTP_SEAL_CONTEXT, &secret);
    let effects =
        [Effect::SetTotp { user_id: uid.clone(), sealed_secret, at: T0 }, Effect::ConfirmTotp { user_id: uid }];
    e.store.apply(&effects).await.unwrap();
    let (mut run, _) = e.start(auth, "login", Some("default")).await;
    assert_eq!(next(&e.call(&mut run, login(PW)).await), Some("OTP_REQUIRED"));
    let cfg = &e.config.authentication.totp;
    let right = totp::code_at(cfg, &secret, e.clock_now()).unwrap();
    let wrong = if right == "000000" { "111111" } else { "000000" };
    let turn = e.call(&mut run, Action::CheckTotp { otp: wrong.into() }).await;
    assert_eq!(retry(&turn), ("OTP_REQUIRED", vec!["OTP_WRONG"]));
    let turn = e.call(&mut run, Action::CheckTotp { otp: right.clone() }).await;
    assert_eq!(next(&turn), None);
    assert_eq!(turn.state.methods_passed, vec!["PASSWORD".to_owned(), "OTP".to_owned()]);
    // The same code a second time (replay) is wrong.
    let (mut again, _) = e.start(auth, "login", Some("default")).await;
    e.call(&mut again, login(PW)).await;
    assert_eq!(retry(&e.call(&mut again, Action::CheckTotp { otp: right }).await).1, vec!["OTP_WRONG"]);

    // mtan with the login's settings: two tries per code plus one (max_wrong_checks = 2), then the flow ends.
    let mid = e.user("mia", None).await;
    e.set_item(&mid, "phone", "+41790000200").await;
    let (mut run, _) = e.start(auth, "login", Some("default")).await;
    let turn = e.call(&mut run, Action::CheckPassword { username: Some("mia".into()), password: PW.into() }).await;
    assert_eq!(next(&turn), Some("MTAN_OTP_REQUIRED"));
    for _ in 0..2 {
        assert_eq!(
            retry(&e.call(&mut run, Action::CheckMtan { otp: "000000".into() }).await).1,
            vec!["MTAN_OTP_WRONG"]
        );
    }
    assert_eq!(ended(&e.call(&mut run, Action::CheckMtan { otp: "000000".into() }).await), vec!["MTAN_OTP_WRONG"]);
    e.env.cleanup().await;
}

async fn selection_roles_and_the_authenticator(backend: Backend) {
    let mut e = Engine::new(backend).await;
    let auth = FlowKind::Authentication;
    e.config.authentication.flows.push(gatehouse_core::config::AuthenticationFlow {
        id: "admins".into(),
        steps: vec![
            Step::Password(Default::default()),
            Step::RequiredRole(gatehouse_core::config::RequiredRoleStep { roles: vec!["admin".into()] }),
        ],
    });
    e.config.validate().unwrap();
    let uid = e.user("nora", None).await;
    e.set_item(&uid, "phone", "+41790000300").await;

    // required-role (non-interactive): ends the flow right after the password.
    let (mut run, _) = e.start(auth, "admins", None).await;
    let turn = e.call(&mut run, Action::CheckPassword { username: Some("nora".into()), password: PW.into() }).await;
    assert_eq!(ended(&turn), vec!["USER_ROLE_MISSING"]);

    // selection in self-service before verification: every option, so the list tells nothing; an unknown id is
    // refused and changes nothing.
    let pss = FlowKind::PublicSelfService;
    e.config.public_self_service.flows[1].restrictions = Default::default();
    let (mut run, _) = e.start(pss, "self-unlock", None).await;
    let turn = e.call(&mut run, Action::Identify { username: "nora".into() }).await;
    assert_eq!(next(&turn), Some("SELECTION_REQUIRED"));
    let turn = e.call(&mut run, Action::RetrieveOptions).await;
    assert_eq!(turn.attributes["options"], serde_json::json!(["APP_2FA", "OATH_OTP", "MTAN"]));
    let turn = e.call(&mut run, Action::SelectOption { id: "FIDO".into() }).await;
    assert_eq!(retry(&turn), ("SELECTION_REQUIRED", vec!["OPTION_NOT_AVAILABLE"]));

    // app-2fa: she has no device, so the request is one nobody can answer; offline codes are wrong; it expires.
    let turn = e.call(&mut run, Action::SelectOption { id: "APP_2FA".into() }).await;
    assert_eq!(next(&turn), Some("APP_2FA_POLLING_OR_OFFLINE_REQUIRED"));
    assert!(turn.attributes["number"].is_u64());
    assert!(run.state.stealth);
    unexpected(&e, &mut run, Action::OfflineCheck { otp: "12345678".into() }).await;
    let turn = e.call(&mut run, Action::OfflineChallenge).await;
    assert!(turn.attributes["offlineChallenge"].as_str().unwrap().starts_with("gatehouse-offline:1:"));
    let turn = e.call(&mut run, Action::OfflineCheck { otp: "12345678".into() }).await;
    assert_eq!(retry(&turn).1, vec!["APP_2FA_CODE_WRONG"]);
    assert_eq!(next(&e.call(&mut run, Action::PollApp).await), Some("APP_2FA_POLLING_OR_OFFLINE_REQUIRED"));
    e.clock.advance_ms(121_000);
    assert_eq!(ended(&e.call(&mut run, Action::PollApp).await), vec!["APP_2FA_EXPIRED"]);
    e.env.cleanup().await;
}

async fn links_letters_and_messages(backend: Backend) {
    let e = Engine::new(backend).await;
    let pss = FlowKind::PublicSelfService;
    let uid = e.user("lena", Some("lena@example.com")).await;

    // send-email-link (non-interactive): the initiation flow completes; the link's token continues elsewhere.
    let (mut run, _) = e.start(pss, "password-reset-link", None).await;
    let turn = e.call(&mut run, Action::Identify { username: "lena".into() }).await;
    assert_eq!(next(&turn), None);
    assert!(turn.effects.iter().any(|x| matches!(x, Effect::CreateContinuationToken(_))));
    let body = e.messages_to("lena@example.com").await.remove(0);
    let token = body.split("?token=").nth(1).unwrap().split_whitespace().next().unwrap().to_owned();

    // flow-continuation: a wrong token ends the flow; the right one identifies, once; expired ones fail.
    let (mut run, turn) = e.start(pss, "password-reset-continue", None).await;
    assert_eq!(next(&turn), Some("FLOW_CONTINUATION_TOKEN_REQUIRED"));
    unexpected(&e, &mut run, Action::SetPassword { new_password: "x".into() }).await;
    let turn = e.call(&mut run, Action::CheckContinuationToken { token: "nope".into() }).await;
    assert_eq!(ended(&turn), vec!["FLOW_CONTINUATION_TOKEN_INVALID"]);
    let (mut run, _) = e.start(pss, "password-reset-continue", None).await;
    let turn = e.call(&mut run, Action::CheckContinuationToken { token: token.clone() }).await;
    assert_eq!(next(&turn), Some("NEW_PASSWORD_REQUIRED"));
    let (mut reuse, _) = e.start(pss, "password-reset-continue", None).await;
    assert_eq!(ended(&e.call(&mut reuse, Action::CheckContinuationToken { token }).await).len(), 1);

    // password-letter-order (non-interactive) ends the complex reset with a letter; the password changed.
    e.set_item(&uid, "postal_address", "Lena Graf; Seeweg 2; 3000 Bern").await;
    let (mut run, _) = e.start(pss, "password-reset-complex", None).await;
    e.call(&mut run, Action::Identify { username: "lena".into() }).await;
    let code = code_in(&e.messages_to("lena@example.com").await[0], 8);
    let turn = e.call(&mut run, Action::CheckEmailOtp { otp: code }).await;
    // Only the letter is on offer (no factor enrolled), so it is chosen at once and the flow ends.
    assert_eq!(next(&turn), None);
    assert_eq!(turn.attributes["letterOrdered"], serde_json::json!(true));
    assert!(turn.effects.iter().any(|x| matches!(x, Effect::SetPassword { .. })));
    let letters = e.messages_to("Seeweg 2").await;
    assert_eq!(letters.len(), 1);
    assert!(letters[0].contains("lena"));

    // An expired email-link token: another link, the clock past its 30 minutes.
    let (mut run, _) = e.start(pss, "password-reset-link", None).await;
    e.call(&mut run, Action::Identify { username: "lena".into() }).await;
    let body = e.messages_to("lena@example.com").await.remove(0);
    let token = body.split("?token=").nth(1).unwrap().split_whitespace().next().unwrap().to_owned();
    e.clock.advance_ms(1_801_000);
    let (mut run, _) = e.start(pss, "password-reset-continue", None).await;
    assert_eq!(ended(&e.call(&mut run, Action::CheckContinuationToken { token }).await).len(), 1);
    e.env.cleanup().await;
}

async fn username_unlock_and_acknowledge(backend: Backend) {
    use gatehouse_core::config::{AcknowledgeMessageStep, AuthenticationFlow, PublicSelfServiceFlow, UsernameStep};
    let mut e = Engine::new(backend).await;
    e.config.authentication.flows.push(AuthenticationFlow {
        id: "passwordless".into(),
        steps: vec![Step::Username(UsernameStep {}), Step::Totp(Default::default())],
    });
    e.config.public_self_service.flows.push(PublicSelfServiceFlow {
        id: "notice".into(),
        legacy_reset_entry: false,
        initialize_next_auth_flow: None,
        restrictions: Default::default(),
        steps: vec![
            Step::UserIdentification(Default::default()),
            Step::AcknowledgeMessage(AcknowledgeMessageStep {
                message_id: Some("pss.notice".into()),
                server_message: None,
            }),
            Step::EmailIdentityVerification(Default::default()),
        ],
    });
    e.config.validate().unwrap();
    let uid = e.user("uma", Some("uma@example.com")).await;

    // username: everyone is identified; an unknown name goes on in stealth mode.
    let auth = FlowKind::Authentication;
    let (mut real, turn) = e.start(auth, "passwordless", None).await;
    assert_eq!(next(&turn), Some("USERNAME_REQUIRED"));
    unexpected(&e, &mut real, Action::CheckTotp { otp: "123456".into() }).await;
    let turn = e.call(&mut real, Action::Identify { username: "uma".into() }).await;
    assert_eq!(next(&turn), Some("OTP_REQUIRED"));
    assert!(turn.renew_token && !real.state.stealth);
    let (mut ghost, _) = e.start(auth, "passwordless", None).await;
    let ghost_turn = e.call(&mut ghost, Action::Identify { username: "nobody".into() }).await;
    assert_eq!(ghost_turn.outcome, turn.outcome);
    assert!(ghost.state.stealth);
    // Stealth: no code passes, nothing is counted, and the flow never completes.
    assert_eq!(retry(&e.call(&mut ghost, Action::CheckTotp { otp: "123456".into() }).await).1, vec!["OTP_WRONG"]);

    // acknowledge-message: shows its message, takes only the acknowledgement.
    let pss = FlowKind::PublicSelfService;
    let (mut run, _) = e.start(pss, "notice", None).await;
    let turn = e.call(&mut run, Action::Identify { username: "uma".into() }).await;
    assert_eq!(next(&turn), Some("ACKNOWLEDGE_MESSAGE_REQUIRED"));
    assert_eq!(turn.attributes["messageId"], "pss.notice");
    unexpected(&e, &mut run, Action::CheckEmailOtp { otp: "12345678".into() }).await;
    assert_eq!(next(&e.call(&mut run, Action::Acknowledge).await), Some("EMAIL_OTP_REQUIRED"));

    // unlock-user (non-interactive), in the demo's self-unlock: after the factor, the user is unlocked and the
    // unlock counted; without a lock nothing happens.
    let lock = Effect::Lock {
        user_id: uid.clone(),
        reason: "LockReason.TooManyAuthAtts.PASSWORD".into(),
        at: T0,
        replace: true,
    };
    e.store.apply(&[lock]).await.unwrap();
    e.set_item(&uid, "phone", "+41790000900").await;
    let (mut run, _) = e.start(pss, "self-unlock", None).await;
    let turn = e.call(&mut run, Action::Identify { username: "uma".into() }).await;
    assert_eq!(next(&turn), Some("MTAN_OTP_REQUIRED"), "her only factor is asked at once");
    let code = code_in(&e.messages_to("+41790000900").await[0], 6);
    let turn = e.call(&mut run, Action::CheckMtan { otp: code }).await;
    assert_eq!(next(&turn), None);
    let uma = e.env.user("uma").await;
    assert!(!uma.locked);
    assert_eq!(uma.unlock_count, 1);
    assert!(turn.next_auth.is_some(), "the demo's self-unlock initializes the next login");
    e.env.cleanup().await;
}
