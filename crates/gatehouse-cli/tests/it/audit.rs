//! The audit trail an operator queries (admin API and `gatehouse audit`), its retention, and housekeeping that
//! two nodes share without doing the same work twice.

use std::collections::BTreeSet;

use gatehouse_core::audit::AuditEvent;
use gatehouse_core::clock::Clock as _;
use gatehouse_core::flow::session::{FlowKind, NewFlowSession, SessionStatus};
use gatehouse_core::ports::{Effect, Spent};
use reqwest::Method;
use serde_json::Value;

use crate::admin_api::{admin, create_token};
use crate::cli::{gatehouse, ok};
use crate::harness::{Backend, TestEnv};
use crate::on_both_backends;

on_both_backends!(
    the_trail_is_filtered_and_paged_by_api_and_cli,
    retention_removes_old_events_in_batches,
    two_nodes_purge_each_row_once
);

const PW: &str = "Old-Cobalt-Lantern-1";

fn ids(events: &[Value]) -> Vec<String> {
    events.iter().map(|e| e["id"].as_str().unwrap().to_owned()).collect()
}

async fn the_trail_is_filtered_and_paged_by_api_and_cli(backend: Backend) {
    let env = TestEnv::new(backend).await;
    let server = env.start(env.config()).await;
    env.add_user("ann", None, Some(PW)).await;
    env.add_user("bob", None, Some(PW)).await;
    for _ in 0..3 {
        server.client().login("ann", "wrong-password").await.expect(400);
    }
    server.client().login("bob", PW).await.expect(200);
    let token = create_token(&env, "auditor");
    let mut c = server.client();
    let mut get =
        async |query: &str| admin(&mut c, Method::GET, &format!("/rest/admin/audit{query}"), &token, None).await;

    // By user and action.
    let r = get("?user=ann&action=login.failed").await;
    r.expect(200);
    let events = r.body["data"].as_array().unwrap().clone();
    assert_eq!(events.len(), 3, "{}", r.body);
    assert!(events.iter().all(|e| e["username"] == "ann" && e["outcome"] == "wrong_password"), "{events:?}");
    // A prefix names a family of events; the other user's login is there.
    let r = get("?user=bob&action=login.").await;
    let names: BTreeSet<&str> = r.body["data"].as_array().unwrap().iter().filter_map(|e| e["event"].as_str()).collect();
    assert!(names.contains("login.succeeded"), "{names:?}");
    assert!(names.iter().all(|n| n.starts_with("login.")), "{names:?}");

    // Pages of two, newest first, follow each other without gap or overlap.
    let all = ids(get("?limit=1000").await.body["data"].as_array().unwrap());
    assert!(all.len() > 5, "{all:?}");
    let mut paged = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let query = cursor.as_ref().map_or("?limit=2".to_owned(), |c| format!("?limit=2&cursor={c}"));
        let r = get(&query).await;
        r.expect(200);
        paged.extend(ids(r.body["data"].as_array().unwrap()));
        match r.body["meta"]["nextCursor"].as_str() {
            Some(next) => cursor = Some(next.to_owned()),
            None => break,
        }
    }
    assert_eq!(paged, all);

    // A time range: nothing before the first event.
    let first =
        get("?limit=1000").await.body["data"].as_array().unwrap().last().unwrap()["at"].as_str().unwrap().to_owned();
    let r = get(&format!("?to={}", first.replace('+', "%2B"))).await;
    assert_eq!(r.body["data"], Value::Array(vec![]), "{}", r.body);
    let r = get(&format!("?from={}", first.replace('+', "%2B"))).await;
    assert_eq!(ids(r.body["data"].as_array().unwrap()).len(), all.len().min(100));

    // Bad input: a clear 400 naming the parameter; no token: 401.
    for (query, pointer) in
        [("?limit=0", Some("/limit")), ("?from=yesterday", Some("/from")), ("?cursor=x", Some("/cursor"))]
    {
        let r = get(query).await;
        assert_eq!((r.status, r.error_codes()), (400, vec!["INVALID_REQUEST".to_owned()]), "{query}: {}", r.body);
        assert_eq!(r.body["errors"][0]["source"]["pointer"].as_str(), pointer, "{query}: {}", r.body);
    }
    assert_eq!(get("?colour=red").await.status, 400);
    assert_eq!(server.client().get("/rest/admin/audit").await.status, 401);

    // The CLI: the same events as JSON lines, the same paging.
    let out = gatehouse(&env, &["audit", "list", "--user", "ann", "--action", "login.failed", "--limit", "2"], None);
    let text = ok(&out);
    let lines: Vec<Value> = text.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(ids(&lines), ids(&events[..2]));
    let stderr = String::from_utf8_lossy(&out.stderr);
    let next = stderr.split("--cursor ").nth(1).unwrap().trim().to_owned();
    let text =
        ok(&gatehouse(&env, &["audit", "list", "--user", "ann", "--action", "login.failed", "--cursor", &next], None));
    let rest: Vec<Value> = text.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(ids(&rest), ids(&events[2..]));
    // tail: the last events, oldest first.
    let text = ok(&gatehouse(&env, &["audit", "tail", "-n", "3", "--user", "ann"], None));
    let tail: Vec<Value> = text.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    let newest_three: Vec<String> = ids(&events).into_iter().rev().collect();
    assert_eq!(ids(&tail), newest_three);
    let bad = gatehouse(&env, &["audit", "list", "--from", "soon"], None);
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("--from"), "{}", String::from_utf8_lossy(&bad.stderr));
    server.stop().await;
    env.cleanup().await;
}

fn event(id: usize, at: i64) -> Effect {
    Effect::Audit(AuditEvent {
        id: format!("{id:032x}"),
        at,
        event: "test.event".into(),
        actor: "test".into(),
        user_id: None,
        username: None,
        flow_id: None,
        session_id: None,
        ip: None,
        outcome: "ok".into(),
        details: serde_json::json!({}),
    })
}

async fn retention_removes_old_events_in_batches(backend: Backend) {
    let env = TestEnv::new(backend).await;
    let store = env.store().await;
    let mut config = env.config();
    config.audit.retention_days = 30;
    let now = env.clock.now_ms();
    let day = 86_400_000;
    // 1 200 events older than 30 days, 10 newer.
    let old: Vec<Effect> = (0..1200).map(|i| event(i, now - 31 * day - i64::try_from(i).unwrap())).collect();
    for chunk in old.chunks(300) {
        store.apply(chunk).await.unwrap();
    }
    let new: Vec<Effect> = (2000..2010).map(|i| event(i, now - day)).collect();
    store.apply(&new).await.unwrap();

    let done = gatehouse_server::housekeeping::round(store.as_ref(), &config, "node-a", now).await;
    // Every task ran (a task whose statement failed would be missing), and retention removed the old events.
    assert_eq!(done.len(), gatehouse_server::housekeeping::tasks(&config, now).len(), "{done:?}");
    assert!(done.contains(&("audit_events", 1200)), "{done:?}");
    let left = store.list_audit(1000).await.unwrap();
    assert_eq!(left.len(), 10);
    // Retention 0 keeps everything.
    config.audit.retention_days = 0;
    let done = gatehouse_server::housekeeping::round(store.as_ref(), &config, "node-a", now + 365 * day).await;
    assert!(!done.iter().any(|(task, _)| *task == "audit_events"), "{done:?}");
    env.cleanup().await;
}

async fn two_nodes_purge_each_row_once(backend: Backend) {
    let env = TestEnv::new(backend).await;
    let (a, b) = (env.store().await, env.second_store().await);
    let config = env.config();
    let now = env.clock.now_ms();
    for i in 0..1200 {
        let session = NewFlowSession {
            id: format!("s{i}"),
            token_hash: format!("h{i}"),
            kind: FlowKind::PublicSelfService,
            flow_id: "password-reset".into(),
            state: serde_json::json!({}),
            status: SessionStatus::Active,
            created_at: now - 10_000_000,
            last_seen_at: now - 10_000_000,
            expires_at: now - 5_000_000,
        };
        assert!(a.create_flow_session(&session, &[]).await.unwrap());
    }
    let (done_a, done_b) = tokio::join!(
        gatehouse_server::housekeeping::round(a.as_ref(), &config, "node-a", now),
        gatehouse_server::housekeeping::round(b.as_ref(), &config, "node-b", now),
    );
    let ran = |done: &[(&str, u64)]| done.iter().find(|(t, _)| *t == "flow_sessions").map(|(_, n)| *n);
    // One node took the task, the other saw its lease and left it: the rows were purged once, by one node.
    match (ran(&done_a), ran(&done_b)) {
        (Some(n), None) | (None, Some(n)) => assert_eq!(n, 1200),
        other => panic!("both or neither node ran the task: {other:?}"),
    }
    assert_eq!(a.purge(Spent::FlowSessions { expired_before: now, idle_before: now }, 500).await.unwrap(), 0);
    // The lease is the holder's until it runs out; then any node may take it.
    assert!(!b.take_lease("flow_sessions", "node-c", now + 1, now + 60_000).await.unwrap() || ran(&done_b).is_some());
    assert!(a.take_lease("flow_sessions", "node-c", now + 3_600_000, now + 3_660_000).await.unwrap());
    // A stopping node gives its leases up: another node takes the task at once, not when the lease runs out.
    assert!(!b.take_lease("flow_sessions", "node-d", now + 3_600_001, now + 3_660_001).await.unwrap());
    assert_eq!(b.release_leases("node-c").await.unwrap(), 1);
    assert!(b.take_lease("flow_sessions", "node-d", now + 3_600_002, now + 3_660_002).await.unwrap());
    assert_eq!(b.release_leases("node-c").await.unwrap(), 0);
    env.cleanup().await;
}
