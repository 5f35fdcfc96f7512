//! A client that hangs up mid-request: the server still does the whole of the work the request started, so
//! nothing is left half-done (a held flow session, a statement cut off with its database connection).

use std::sync::Arc;
use std::time::{Duration, Instant};

use gatehouse_core::config::PublicFlowFailures;
use tokio::sync::Semaphore;

use crate::admin_api::create_token;
use crate::counting::CountingStore;
use crate::harness::{Backend, Client, TestEnv, TestServer, reset_until_otp};
use crate::on_both_backends;

on_both_backends!(
    an_admin_call_runs_to_its_end_without_its_client,
    a_flow_call_runs_to_its_end_without_its_client,
    shutdown_waits_for_a_request_whose_client_hung_up
);

const PW: &str = "Old-Cobalt-Lantern-1";

/// Sends `request` from a task of its own, waits until the store holds the request at `call`, hangs up and gives
/// the server time to notice. Returns the gate that lets the call go on.
async fn abandon_at(
    store: &CountingStore,
    call: &'static str,
    request: impl Future<Output = ()> + Send + 'static,
) -> Arc<Semaphore> {
    let gate = store.hold(call);
    let client = tokio::spawn(request);
    let deadline = Instant::now() + Duration::from_secs(5);
    while !store.saw(call) {
        assert!(Instant::now() < deadline, "the request never reached {call}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    client.abort();
    assert!(client.await.unwrap_err().is_cancelled(), "the client was still waiting for its answer");
    // The connection is closed now; before requests ran to their end, this is when the server dropped the call.
    tokio::time::sleep(Duration::from_millis(300)).await;
    gate
}

/// Opens `gate` and waits until the held `call` finished; fails after 5 s.
async fn let_finish(store: &CountingStore, call: &str, gate: &Semaphore) {
    gate.add_permits(1);
    let finished = format!("{call} finished");
    let deadline = Instant::now() + Duration::from_secs(5);
    while !store.saw(&finished) {
        assert!(Instant::now() < deadline, "the call stopped when its client hung up: {:?}", store.take());
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// [`abandon_at`], then [`let_finish`].
async fn hang_up_at(store: &CountingStore, call: &'static str, request: impl Future<Output = ()> + Send + 'static) {
    let gate = abandon_at(store, call, request).await;
    let_finish(store, call, &gate).await;
}

/// Adds user `ned` and returns a helpdesk's request that deletes him, to be sent by a client that hangs up.
async fn deleting_ned(env: &TestEnv, server: &TestServer) -> impl Future<Output = ()> + Send + 'static {
    env.add_user("ned", Some("ned@example.com"), Some(PW)).await;
    let token = create_token(env, "helpdesk");
    let mut c = server.client();
    async move {
        crate::admin_api::admin(&mut c, reqwest::Method::DELETE, "/rest/admin/users/ned", &token, None).await;
    }
}

async fn an_admin_call_runs_to_its_end_without_its_client(backend: Backend) {
    let env = TestEnv::new(backend).await;
    let (store, server) = CountingStore::serve(&env, env.config()).await;
    hang_up_at(&store, "apply", deleting_ned(&env, &server).await).await;
    assert!(env.store().await.find_user_by_login("ned").await.unwrap().is_none(), "the deletion was done");
    server.stop().await;
    env.cleanup().await;
}

/// The flow session is held while a call runs on it: had the call stopped half-way, the next call would find it
/// busy until the lease ran out. It finds the flow where the abandoned call took it: one wrong code counted.
async fn a_flow_call_runs_to_its_end_without_its_client(backend: Backend) {
    let env = TestEnv::new(backend).await;
    let mut config = env.config();
    config.lockout.public_flow_failures = PublicFlowFailures::Lock;
    let (store, server) = CountingStore::serve(&env, config).await;
    env.add_user("jdoe", Some("jdoe@example.com"), Some(PW)).await;
    let (mut browser, otp) = reset_until_otp(&server, &env.outbox(), "jdoe", "jdoe@example.com").await;
    let wrong = if otp == "00000000" { "11111111" } else { "00000000" };

    let mut leaving: Client = browser.clone();
    hang_up_at(&store, "commit_flow_session", async move {
        leaving.check_otp(wrong).await;
    })
    .await;
    assert_eq!(env.user("jdoe").await.failed_attempts.get("EMAIL_OTP"), Some(&1));
    let r = browser.check_otp(&otp).await;
    r.expect(200);
    assert_eq!(r.next_step(), Some("NEW_PASSWORD_REQUIRED"));
    browser.set_password("Fresh-Marble-Otter-42").await.expect(200);
    server.client().login("jdoe", "Fresh-Marble-Otter-42").await.expect(200);
    server.stop().await;
    env.cleanup().await;
}

/// A stopping server finishes what it started within its grace period, for clients gone as for those waiting.
async fn shutdown_waits_for_a_request_whose_client_hung_up(backend: Backend) {
    let env = TestEnv::new(backend).await;
    let (store, server) = CountingStore::serve(&env, env.config()).await;
    let gate = abandon_at(&store, "apply", deleting_ned(&env, &server).await).await;
    let stopping = tokio::spawn(server.stop());
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(!stopping.is_finished(), "the server stopped with a request unfinished");
    let_finish(&store, "apply", &gate).await;
    tokio::time::timeout(Duration::from_secs(5), stopping).await.unwrap().unwrap();
    assert!(env.store().await.find_user_by_login("ned").await.unwrap().is_none(), "the deletion was done");
    env.cleanup().await;
}
