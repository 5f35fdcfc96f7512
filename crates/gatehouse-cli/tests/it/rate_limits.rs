//! Rate limits: per account name (known and unknown alike) across two nodes, per client address, and client
//! addresses from trusted proxies only.

use crate::harness::{Backend, TestEnv};
use crate::on_both_backends;

on_both_backends!(known_and_unknown_names_are_limited_alike_on_two_nodes, per_client_and_behind_trusted_proxies);

async fn known_and_unknown_names_are_limited_alike_on_two_nodes(backend: Backend) {
    let env = TestEnv::new(backend).await;
    let mut config = env.config();
    config.rate_limits.enabled = true;
    config.rate_limits.per_account_requests = 3;
    config.rate_limits.per_ip_requests = 1000;
    let (a, b) = (env.start(config.clone()).await, env.start(config).await);
    env.add_user("real", Some("real@example.com"), Some("Old-Cobalt-Lantern-1")).await;

    let mut seen = Vec::new();
    for name in ["real", "Ghost-Who-Is-Not"] {
        let mut statuses = Vec::new();
        for i in 0..5 {
            let mut c = if i % 2 == 0 { a.client() } else { b.client() };
            c.select("password-reset").await.expect(200);
            let r = c.identify(name).await;
            statuses.push((r.status, r.error_codes()));
            if r.status == 429 {
                let retry: u64 = r.headers.get("retry-after").unwrap().to_str().unwrap().parse().unwrap();
                assert!(retry > 0 && retry <= 900, "{retry}");
            }
        }
        seen.push(statuses);
    }
    let limited = (429, vec!["RATE_LIMITED".to_owned()]);
    assert_eq!(seen[0][..3].iter().map(|s| s.0).collect::<Vec<_>>(), vec![200, 200, 200]);
    assert_eq!(seen[0][3..], [limited.clone(), limited]);
    assert_eq!(seen[0], seen[1], "an unknown name is limited exactly like a real one");

    // The name's case and blanks do not buy more tries.
    let mut c = a.client();
    c.select("password-reset").await.expect(200);
    assert_eq!(c.identify("  REAL ").await.status, 429);
    a.stop().await;
    b.stop().await;
    env.cleanup().await;
}

async fn per_client_and_behind_trusted_proxies(backend: Backend) {
    let env = TestEnv::new(backend).await;
    let mut config = env.config();
    config.rate_limits.enabled = true;
    config.rate_limits.per_ip_requests = 4;
    let server = env.start(config.clone()).await;
    let mut statuses = Vec::new();
    for _ in 0..3 {
        let mut c = server.client();
        statuses.push(c.select("password-reset").await.status);
        statuses.push(c.identify("someone").await.status);
    }
    assert_eq!(statuses, vec![200, 200, 200, 200, 429, 429]);
    // Without trust, X-Forwarded-For changes nothing.
    let mut c = server.client();
    let req = c
        .http
        .post(format!("{}/rest/public/self-service/flows/password-reset/select", server.base))
        .header("x-forwarded-for", "198.51.100.7")
        .header("x-same-domain", "1")
        .header("content-type", "application/json");
    assert_eq!(c.send(req).await.status, 429);
    server.stop().await;

    // Behind a trusted proxy each client has its own budget; what the client adds on the left is ignored.
    config.rate_limits.trusted_proxies = vec!["127.0.0.1".into()];
    let server = env.start(config).await;
    for client in ["198.51.100.8", "198.51.100.9"] {
        for i in 0..5 {
            let mut c = server.client();
            let req = c
                .http
                .post(format!("{}/rest/public/self-service/flows/password-reset/select", server.base))
                .header("x-forwarded-for", format!("10.0.0.{i}, {client}"))
                .header("x-same-domain", "1")
                .header("content-type", "application/json");
            let status = c.send(req).await.status;
            assert_eq!(status, if i < 4 { 200 } else { 429 }, "{client} #{i}");
        }
    }
    server.stop().await;
    env.cleanup().await;
}
