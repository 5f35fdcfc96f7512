//! The Gatehouse authenticator: enrollment, push approval with number matching (the CLI authenticator as a
//! separate process), offline codes, denial, and the signature checks of the device API.

use std::process::{Command, Output};
use std::time::{Duration, Instant};

use gatehouse_core::authenticator::{DeviceKey, approval_message};

use crate::counting::CountingStore;
use crate::harness::{Backend, Client, TestEnv, TestServer};
use crate::on_both_backends;

on_both_backends!(
    push_and_offline_login_with_the_cli_authenticator,
    forged_replayed_expired_and_removed,
    a_waiting_device_reads_the_database_only_when_there_is_news,
    a_long_poll_ends_when_its_client_hangs_up
);

const PW: &str = "Old-Cobalt-Lantern-1";
const BIN: &str = env!("CARGO_BIN_EXE_gatehouse");

/// A config bound to a port known in advance, so activation URIs can name the server.
pub(crate) fn config_on_port(env: &TestEnv) -> gatehouse_core::config::Config {
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let mut c = env.config();
    c.server.bind = format!("127.0.0.1:{port}");
    c.server.public_url = Some(format!("http://127.0.0.1:{port}"));
    c.authenticator.poll_wait_seconds = 5;
    c
}

pub(crate) fn gatehouse(env: &TestEnv, args: &[&str]) -> Output {
    command(env, args).output().unwrap()
}

/// The `gatehouse` command with `args` on the test's database, key and data directory.
fn command(env: &TestEnv, args: &[&str]) -> Command {
    let mut cmd = Command::new(BIN);
    cmd.args(args)
        .env_remove("GATEHOUSE_CONFIG")
        .env("GATEHOUSE_DATABASE_URL", &env.db_url)
        .env("GATEHOUSE_DATA_DIR", env.dir.path())
        .env("GATEHOUSE_SERVER__SECRET_KEY", &env.key);
    if let Some(schema) = &env.schema {
        cmd.env("GATEHOUSE_STORAGE__SCHEMA", schema);
    }
    cmd
}

#[track_caller]
pub(crate) fn ok(out: &Output) -> String {
    assert!(out.status.success(), "{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

async fn login_to_app_step(server: &TestServer) -> (Client, u32) {
    let mut c = server.client();
    let r = c.login("nora", PW).await;
    assert_eq!(r.next_auth_step(), Some("APP_2FA_POLLING_OR_OFFLINE_REQUIRED"), "{}", r.body);
    let number = u32::try_from(r.body["data"]["attributes"]["number"].as_u64().unwrap()).unwrap();
    (c, number)
}

pub(crate) fn pending(env: &TestEnv, store: &str) -> Vec<serde_json::Value> {
    let out = ok(&gatehouse(env, &["authenticator", "--store", store, "pending", "--wait", "5", "--json"]));
    serde_json::from_str::<Vec<serde_json::Value>>(&out).unwrap()
}

async fn push_and_offline_login_with_the_cli_authenticator(backend: Backend) {
    let env = TestEnv::new(backend).await;
    let config = config_on_port(&env);
    let node_a = env.start(config.clone()).await;
    let mut other = env.config();
    other.authenticator = config.authenticator.clone();
    let node_b = env.start(other).await;
    env.add_user("nora", Some("nora@example.com"), Some(PW)).await;
    let store = env.dir.path().join("authenticator.json").display().to_string();

    // Activation from the user's own session, enrolled by the CLI authenticator from the activation URI.
    let mut session = server_login(&node_a).await;
    let r = session.post("/rest/protected/self-service/app-2fa/activation/", None).await;
    r.expect(200);
    let uri = r.body["data"]["attributes"]["activationUri"].as_str().unwrap().to_owned();
    assert!(r.body["data"]["attributes"]["qrCode"].as_str().unwrap().contains("<svg"));
    assert!(
        ok(&gatehouse(&env, &["authenticator", "--store", &store, "enroll", &uri, "--name", "test phone"]))
            .contains("enrolled as nora")
    );
    // An activation code works once.
    let again = gatehouse(&env, &["authenticator", "--store", &format!("{store}.2"), "enroll", &uri]);
    assert!(!again.status.success() && String::from_utf8_lossy(&again.stderr).contains("ACTIVATION_INVALID"));
    let devices = session.get("/rest/protected/self-service/app-2fa/devices").await;
    assert_eq!(devices.body["data"][0]["attributes"]["displayName"], "test phone");

    // Push: the browser shows a number, the device offers it among decoys. The device talks to node A (the
    // activation URI names it) while the browser's poll may wait on any node: the database carries the decision.
    let (mut browser, number) = login_to_app_step(&node_b).await;
    let requests = pending(&env, &store);
    assert_eq!(requests.len(), 1);
    let choices: Vec<u64> =
        requests[0]["attributes"]["choices"].as_array().unwrap().iter().map(|v| v.as_u64().unwrap()).collect();
    assert_eq!(choices.len(), 3);
    assert!(choices.contains(&u64::from(number)));
    assert_eq!(requests[0]["attributes"]["kind"], "login");
    let id = requests[0]["id"].as_str().unwrap().to_owned();
    let poll = tokio::spawn({
        let mut b = browser.clone();
        async move { b.post("/rest/public/authentication/app-2fa/status/poll/", None).await }
    });
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    ok(&gatehouse(&env, &["authenticator", "--store", &store, "approve", &id, "--number", &number.to_string()]));
    let decided = std::time::Instant::now();
    let r = poll.await.unwrap();
    r.expect(200);
    assert!(decided.elapsed() < std::time::Duration::from_secs(2), "{:?}", decided.elapsed());
    assert_eq!(r.body["data"]["attributes"], serde_json::json!({}));
    browser.jar.extend(r.headers.get_all("set-cookie").iter().filter_map(|v| {
        let (k, rest) = v.to_str().ok()?.split_once('=')?;
        Some((k.to_owned(), rest.split(';').next()?.to_owned()))
    }));
    let s = browser.get("/rest/protected/session").await;
    assert_eq!(s.body["data"]["attributes"]["factors"], serde_json::json!(["PASSWORD", "APP_2FA"]));

    // Offline: a challenge, the code the device derives from it, typed into the browser.
    let (mut browser, _) = login_to_app_step(&node_b).await;
    let r = browser.post("/rest/public/authentication/app-2fa/offline/challenge/", None).await;
    let challenge = r.body["data"]["attributes"]["offlineChallenge"].as_str().unwrap().to_owned();
    assert!(r.body["data"]["attributes"]["qrCode"].as_str().unwrap().contains("<svg"));
    let code = ok(&gatehouse(&env, &["authenticator", "--store", &store, "offline", &challenge])).trim().to_owned();
    assert_eq!(code.len(), 8);
    let wrong = if code == "00000000" { "11111111" } else { "00000000" };
    let r = browser
        .post("/rest/public/authentication/app-2fa/offline/check/", Some(serde_json::json!({ "otp": wrong })))
        .await;
    assert_eq!((r.status, r.error_codes()), (400, vec!["APP_2FA_CODE_WRONG".to_owned()]));
    assert_eq!(env.user("nora").await.failed_attempts.get("APP_2FA"), Some(&1));
    browser
        .post("/rest/public/authentication/app-2fa/offline/check/", Some(serde_json::json!({ "otp": code })))
        .await
        .expect(200);
    assert!(env.user("nora").await.failed_attempts.is_empty(), "the successful login reset the counter");

    // Deny: the flow ends and the denial counts.
    let (mut browser, _) = login_to_app_step(&node_a).await;
    let id = pending(&env, &store)[0]["id"].as_str().unwrap().to_owned();
    ok(&gatehouse(&env, &["authenticator", "--store", &store, "deny", &id]));
    let r = browser.post("/rest/public/authentication/app-2fa/status/poll/", None).await;
    assert_eq!((r.status, r.error_codes()), (403, vec!["APP_2FA_DENIED".to_owned()]));
    assert_eq!(env.user("nora").await.failed_attempts.get("APP_2FA"), Some(&1));

    // Approving with the wrong number is a denial too.
    let (mut browser, number) = login_to_app_step(&node_a).await;
    let id = pending(&env, &store)[0]["id"].as_str().unwrap().to_owned();
    let wrong_number = if number == 10 { 11 } else { number - 1 };
    let out =
        gatehouse(&env, &["authenticator", "--store", &store, "approve", &id, "--number", &wrong_number.to_string()]);
    assert!(!out.status.success() && String::from_utf8_lossy(&out.stderr).contains("NUMBER_MISMATCH"));
    let r = browser.post("/rest/public/authentication/app-2fa/status/poll/", None).await;
    assert_eq!(r.error_codes(), vec!["APP_2FA_DENIED"]);
    node_a.stop().await;
    node_b.stop().await;
    env.cleanup().await;
}

/// Enrolls the CLI authenticator for `username`, activated from the user's own session so that the activation URI
/// names `server`. Returns the authenticator's store, in the test's directory.
pub(crate) async fn enroll_cli_authenticator(
    env: &TestEnv,
    server: &TestServer,
    username: &str,
    password: &str,
) -> String {
    let device = env.dir.path().join("authenticator.json").display().to_string();
    let mut session = server.client();
    let r = session.login(username, password).await;
    assert_eq!(r.body["data"]["attributes"], serde_json::json!({}), "{}", r.body);
    let r = session.post("/rest/protected/self-service/app-2fa/activation/", None).await;
    let uri = r.body["data"]["attributes"]["activationUri"].as_str().unwrap().to_owned();
    ok(&gatehouse(env, &["authenticator", "--store", &device, "enroll", &uri]));
    device
}

async fn server_login(server: &TestServer) -> Client {
    let mut c = server.client();
    let r = c.login("nora", PW).await;
    assert_eq!(r.body["data"]["attributes"], serde_json::json!({}), "{}", r.body);
    c
}

async fn forged_replayed_expired_and_removed(backend: Backend) {
    let env = TestEnv::new(backend).await;
    let config = config_on_port(&env);
    let server = env.start(config).await;
    env.add_user("nora", None, Some(PW)).await;
    env.add_user("otto", None, Some(PW)).await;

    // Enroll a device by hand through the device API, with an activation from the CLI.
    let out = ok(&gatehouse(&env, &["user", "activate-authenticator", "nora"]));
    let code = out.lines().nth(1).unwrap().replace('-', "");
    assert_eq!(code.len(), 16);
    let random = gatehouse_core::random::SystemRandom;
    let key = DeviceKey::generate(&random);
    let mut c = server.client();
    let offline = gatehouse_core::authenticator::encode(&[7u8; 32]);
    let body = serde_json::json!({ "code": code, "publicKey": key.public_key(), "offlineKey": offline, "displayName": "hand" });
    let r = c.post("/rest/device/activate", Some(body.clone())).await;
    r.expect(201);
    let device_id = r.body["data"]["attributes"]["deviceId"].as_str().unwrap().to_owned();
    let r = c.post("/rest/device/activate", Some(body)).await;
    assert_eq!(r.error_codes(), vec!["ACTIVATION_INVALID"]);

    let (_browser, number) = login_to_app_step(&server).await;
    let now = gatehouse_core::clock::Clock::now_ms(env.clock.as_ref());
    let approval = env.store().await.pending_approvals(&env.user("nora").await.id, now).await.unwrap().remove(0);
    let decide = |sig: String, decision: &str, number: u32, device: &str| serde_json::json!({ "deviceId": device, "decision": decision, "number": number, "signature": sig });
    let path = format!("/rest/device/approvals/{}/decision", approval.id);

    // Forged: another key; a signature over another request; unsigned device reads.
    let stranger = DeviceKey::generate(&random);
    let forged = stranger.sign(&approval_message(&approval.id, &approval.nonce, "approve", number));
    let r = c.post(&path, Some(decide(forged, "approve", number, &device_id))).await;
    assert_eq!((r.status, r.error_codes()), (401, vec!["DEVICE_NOT_AUTHENTICATED".to_owned()]));
    let other = key.sign(&approval_message(&approval.id, "another-nonce", "approve", number));
    assert_eq!(c.post(&path, Some(decide(other, "approve", number, &device_id))).await.status, 401);
    assert_eq!(c.get("/rest/device/approvals").await.status, 401);

    // The right signature works once; the replay is refused.
    let good = key.sign(&approval_message(&approval.id, &approval.nonce, "approve", number));
    c.post(&path, Some(decide(good.clone(), "approve", number, &device_id))).await.expect(200);
    let r = c.post(&path, Some(decide(good, "approve", number, &device_id))).await;
    assert_eq!((r.status, r.error_codes()), (409, vec!["APPROVAL_NOT_PENDING".to_owned()]));

    // Expired requests cannot be approved (and the browser's poll ends the flow).
    let (mut browser, number) = login_to_app_step(&server).await;
    let now = gatehouse_core::clock::Clock::now_ms(env.clock.as_ref());
    let approval = env.store().await.pending_approvals(&env.user("nora").await.id, now).await.unwrap().remove(0);
    env.clock.advance_ms(121_000);
    let sig = key.sign(&approval_message(&approval.id, &approval.nonce, "approve", number));
    let r = c
        .post(
            &format!("/rest/device/approvals/{}/decision", approval.id),
            Some(decide(sig, "approve", number, &device_id)),
        )
        .await;
    assert_eq!(r.error_codes(), vec!["APPROVAL_NOT_PENDING"]);
    let r = browser.post("/rest/public/authentication/app-2fa/status/poll/", None).await;
    assert_eq!((r.status, r.error_codes()), (403, vec!["APP_2FA_EXPIRED".to_owned()]));

    // The helpdesk removes the device: it can no longer approve; the user is back to password-only.
    let token = ok(&gatehouse(&env, &["admin", "token", "create", "helpdesk"])).trim().to_owned();
    let (_browser, number) = login_to_app_step(&server).await;
    let now = gatehouse_core::clock::Clock::now_ms(env.clock.as_ref());
    let approval = env.store().await.pending_approvals(&env.user("nora").await.id, now).await.unwrap().remove(0);
    let admin = |method: reqwest::Method, path: String| {
        let c = c.clone();
        let token = token.clone();
        async move {
            let mut c = c;
            let req = c
                .http
                .request(method, format!("{}{path}", c.base))
                .header("authorization", format!("Bearer {token}"))
                .header("x-same-domain", "1");
            c.send(req).await
        }
    };
    let listed = admin(reqwest::Method::GET, "/rest/admin/users/nora/app-2fa/devices".into()).await;
    assert_eq!(listed.body["data"][0]["id"], device_id.as_str());
    assert_eq!(
        admin(reqwest::Method::DELETE, format!("/rest/admin/users/nora/app-2fa/devices/{device_id}")).await.status,
        204
    );
    let sig = key.sign(&approval_message(&approval.id, &approval.nonce, "approve", number));
    let r = c
        .post(
            &format!("/rest/device/approvals/{}/decision", approval.id),
            Some(decide(sig, "approve", number, &device_id)),
        )
        .await;
    assert_eq!((r.status, r.error_codes()), (404, vec!["APPROVAL_NOT_FOUND".to_owned()]));
    let r = server.client().login("nora", PW).await;
    assert_eq!(r.body["data"]["attributes"], serde_json::json!({}));
    server.stop().await;
    env.cleanup().await;
}

/// An enrolled device long-polls for requests all day, so a poll that waits must cost the database nothing while
/// nothing happens: it reads at its start and at its end, and when a request for its user is created.
async fn a_waiting_device_reads_the_database_only_when_there_is_news(backend: Backend) {
    let env = TestEnv::new(backend).await;
    let mut config = config_on_port(&env);
    config.authenticator.poll_wait_seconds = 10;
    let (store, server) = CountingStore::serve(&env, config).await;
    env.add_user("nora", Some("nora@example.com"), Some(PW)).await;
    let device = enroll_cli_authenticator(&env, &server, "nora", PW).await;
    let reads = |calls: Vec<String>| calls.iter().filter(|c| *c == "pending_approvals").count();

    // The device's first request writes when it was last seen; the next ones, within a minute, write nothing.
    ok(&gatehouse(&env, &["authenticator", "--store", &device, "pending", "--wait", "0", "--json"]));
    assert!(store.take().contains(&"touch_device".to_owned()));
    // SQLite's once-a-second check sees that write before the poll below starts.
    tokio::time::sleep(Duration::from_millis(1100)).await;

    // Nothing happens for 4 s: two reads (one per second before). On SQLite one more is allowed: once a second the
    // store checks whether anything committed (another process may share the file), and the server's own
    // background work (housekeeping's leases, delivery) may have.
    let started = Instant::now();
    let out = ok(&gatehouse(&env, &["authenticator", "--store", &device, "pending", "--wait", "4", "--json"]));
    assert!(serde_json::from_str::<Vec<serde_json::Value>>(&out).unwrap().is_empty(), "{out}");
    assert!(started.elapsed() >= Duration::from_secs(4), "{:?}", started.elapsed());
    let calls = store.take();
    assert!(!calls.contains(&"touch_device".to_owned()), "{calls:?}");
    let allowed = if backend == Backend::Sqlite { 2..=3 } else { 2..=2 };
    assert!(allowed.contains(&reads(calls.clone())), "at its start and at its end: {calls:?}");

    // A login that asks this device wakes the poll at once, with one read more (on SQLite perhaps one more again:
    // the login commits before it asks).
    let mut poll = command(&env, &["authenticator", "--store", &device, "pending", "--wait", "10", "--json"]);
    let waiting = tokio::task::spawn_blocking(move || poll.output().unwrap());
    tokio::time::sleep(Duration::from_millis(500)).await;
    let (_browser, number) = login_to_app_step(&server).await;
    let asked = Instant::now();
    let out = ok(&waiting.await.unwrap());
    assert!(asked.elapsed() < Duration::from_secs(5), "{:?}", asked.elapsed());
    let requests = serde_json::from_str::<Vec<serde_json::Value>>(&out).unwrap();
    assert_eq!(requests.len(), 1);
    let choices = requests[0]["attributes"]["choices"].as_array().unwrap();
    assert!(choices.iter().any(|c| c.as_u64() == Some(u64::from(number))));
    let calls = store.take();
    assert!(allowed.contains(&reads(calls.clone())), "at its start and on the news: {calls:?}");
    server.stop().await;
    env.cleanup().await;
}

/// Every request runs to its end when its client hangs up (hang_ups.rs), except a long poll's wait: it holds
/// nothing, and news would reach nobody. A closed tab or a gone device leaves no poll waiting out its time.
async fn a_long_poll_ends_when_its_client_hangs_up(backend: Backend) {
    let env = TestEnv::new(backend).await;
    let mut config = config_on_port(&env);
    config.authenticator.poll_wait_seconds = 60;
    config.metrics.listen = Some("127.0.0.1:0".into());
    let server = env.start(config).await;
    env.add_user("nora", Some("nora@example.com"), Some(PW)).await;
    let device = enroll_cli_authenticator(&env, &server, "nora", PW).await;
    let metrics = server.metrics_url().unwrap();
    let until_waiting = |count: f64| until_polls_wait(metrics.clone(), count);
    // The browser's poll on the login's push request.
    let (browser, number) = login_to_app_step(&server).await;
    let poll = tokio::spawn({
        let mut b = browser.clone();
        async move { b.post("/rest/public/authentication/app-2fa/status/poll/", None).await }
    });
    until_waiting(1.0).await;
    poll.abort();
    until_waiting(0.0).await;

    // The device's poll for requests (the CLI authenticator, signed), killed while it waits: with the login's
    // request approved, there is nothing for it to take at once.
    let id = pending(&env, &device)[0]["id"].as_str().unwrap().to_owned();
    ok(&gatehouse(&env, &["authenticator", "--store", &device, "approve", &id, "--number", &number.to_string()]));
    let mut device_poll = command(&env, &["authenticator", "--store", &device, "pending", "--wait", "60", "--json"])
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    until_waiting(1.0).await;
    device_poll.kill().unwrap();
    device_poll.wait().unwrap();
    until_waiting(0.0).await;

    // The flow the abandoned poll waited on goes on: the approval is there for the next poll.
    let mut browser = browser;
    let r = browser.post("/rest/public/authentication/app-2fa/status/poll/", None).await;
    r.expect(200);
    assert_eq!(r.body["data"]["attributes"], serde_json::json!({}));
    server.stop().await;
    env.cleanup().await;
}

/// Waits until `gatehouse_long_polls_waiting` on `metrics` is `count`; fails after 5 s.
async fn until_polls_wait(metrics: String, count: f64) {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let text = reqwest::get(&metrics).await.unwrap().text().await.unwrap();
        let waiting = text
            .lines()
            .find_map(|l| l.strip_prefix("gatehouse_long_polls_waiting "))
            .map_or(0.0, |v| v.trim().parse::<f64>().unwrap());
        if waiting == count {
            return;
        }
        assert!(Instant::now() < deadline, "{count} polls never waited (now {waiting})");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
