//! Messages a flow call queues reach this node's delivery worker in memory, claimed in the transaction that queued
//! them: delivered without a claim taking them from the store. What is queued otherwise is claimed and delivered.

use serde_json::json;

use crate::admin_api::{admin, create_token};
use crate::counting::CountingStore;
use crate::harness::{Backend, TestEnv, reset_until_otp, wait_for_mails};
use crate::on_both_backends;

on_both_backends!(flow_mails_are_handed_to_the_worker_and_others_are_claimed);

async fn flow_mails_are_handed_to_the_worker_and_others_are_claimed(backend: Backend) {
    let env = TestEnv::new(backend).await;
    let (store, server) = CountingStore::serve(&env, env.config()).await;
    for name in ["ada", "bo", "cy"] {
        env.add_user(name, Some(&format!("{name}@example.com")), Some("Old-Cobalt-Lantern-1")).await;
    }
    for name in ["ada", "bo", "cy"] {
        reset_until_otp(&server, &env.outbox(), name, &format!("{name}@example.com")).await;
    }
    assert!(store.saw("claim_outbox"), "the worker still asks the store (at start, every poll interval)");
    assert_eq!(store.messages_claimed(), 0, "the three codes were delivered from the hand-off, none claimed");
    // An administrator's reset link is queued outside any flow call: the worker claims it from the store.
    let token = create_token(&env, "helpdesk");
    let mut api = server.client();
    admin(&mut api, reqwest::Method::POST, "/rest/admin/users/ada/reset-link", &token, Some(json!({})))
        .await
        .expect(202);
    let mails = wait_for_mails(&env.outbox(), "ada@example.com", 2).await;
    assert!(mails.iter().any(|m| m.body.contains("token=")), "the link was delivered");
    assert_eq!(store.messages_claimed(), 1, "the link's mail was claimed");
    // A stopping worker records what it delivered before it ends; the mail file may appear before that.
    server.stop().await;
    assert_eq!(env.store().await.pending_outbox().await.unwrap(), 0, "every message was recorded as delivered");
    env.cleanup().await;
}
