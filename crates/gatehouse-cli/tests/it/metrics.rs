//! `/metrics`: a login and a reset move the counters they must, the gauges are there, and the endpoint is
//! served on its own address, or on the public port only with the bearer token.

use std::collections::BTreeMap;

use crate::harness::{Backend, TestEnv, reset_until_otp};

const PW: &str = "Old-Cobalt-Lantern-1";
const TOKEN: &str = "metrics-token-0123456789abcdef";

/// Samples of the Prometheus text format: (name, labels, value).
fn samples(text: &str) -> Vec<(String, BTreeMap<String, String>, f64)> {
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .filter_map(|l| {
            let (metric, value) = l.rsplit_once(' ')?;
            let (name, labels) = match metric.split_once('{') {
                Some((n, rest)) => (n, rest.trim_end_matches('}')),
                None => (metric, ""),
            };
            let labels = labels
                .split("\",")
                .filter_map(|pair| pair.split_once("=\""))
                .map(|(k, v)| (k.to_owned(), v.trim_end_matches('"').to_owned()))
                .collect();
            Some((name.to_owned(), labels, value.parse().ok()?))
        })
        .collect()
}

/// The sum of `name` over the samples whose labels include `labels`.
fn total(text: &str, name: &str, labels: &[(&str, &str)]) -> f64 {
    samples(text)
        .into_iter()
        .filter(|(n, l, _)| n == name && labels.iter().all(|(k, v)| l.get(*k).map(String::as_str) == Some(*v)))
        .map(|(_, _, v)| v)
        .sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_login_and_a_reset_move_the_counters() {
    let env = TestEnv::new(Backend::Sqlite).await;
    let mut config = env.config();
    config.metrics.listen = Some("127.0.0.1:0".into());
    let token_file = env.dir.path().join("metrics-token");
    std::fs::write(&token_file, format!("{TOKEN}\n")).unwrap();
    config.metrics.bearer_token_file = Some(token_file);
    let server = env.start(config).await;
    env.add_user("mo", Some("mo@example.com"), Some(PW)).await;

    server.client().login("mo", PW).await.expect(200);
    server.client().login("mo", "wrong-password").await.expect(400);
    let (mut c, otp) = reset_until_otp(&server, &env.outbox(), "mo", "mo@example.com").await;
    c.check_otp(&otp).await.expect(200);
    c.set_password("Fresh-Marble-Otter-42").await.expect(200);

    let url = server.metrics_url().unwrap();
    let http = reqwest::Client::new();
    let text = http.get(&url).send().await.unwrap().text().await.unwrap();
    let at_least = |name: &str, labels: &[(&str, &str)], n: f64| {
        let seen = total(&text, name, labels);
        assert!(seen >= n, "{name}{labels:?}: {seen} < {n}\n{text}");
    };
    at_least("gatehouse_logins_total", &[("outcome", "ok")], 1.0);
    at_least("gatehouse_logins_total", &[("outcome", "wrong_password")], 1.0);
    at_least("gatehouse_flows_total", &[("flow", "password-reset"), ("result", "started")], 1.0);
    at_least("gatehouse_flows_total", &[("flow", "password-reset"), ("result", "completed")], 1.0);
    at_least("gatehouse_flows_total", &[("flow", "login"), ("result", "completed")], 1.0);
    at_least("gatehouse_otps_total", &[("result", "queued")], 1.0);
    at_least("gatehouse_otps_total", &[("result", "verified")], 1.0);
    // The code mail and the password-changed mail.
    at_least("gatehouse_messages_total", &[("channel", "email"), ("result", "queued")], 2.0);
    let identify = [("route", "/rest/public/self-service/username/identify/"), ("status", "200")];
    at_least("gatehouse_http_requests_total", &identify, 1.0);
    at_least("gatehouse_http_request_duration_seconds_count", &identify, 1.0);
    for gauge in [
        "gatehouse_outbox_backlog",
        "gatehouse_outbox_oldest_age_seconds",
        "gatehouse_hashing_workers_busy",
        "gatehouse_hashing_queue_depth",
        "gatehouse_db_pool_connections",
    ] {
        assert!(samples(&text).iter().any(|(n, _, _)| n == gauge), "{gauge} missing\n{text}");
    }

    // The public port: only with the token.
    let public = format!("{}/metrics", server.base);
    assert_eq!(http.get(&public).send().await.unwrap().status(), 401);
    let wrong = http.get(&public).bearer_auth("not-the-token-at-all").send().await.unwrap();
    assert_eq!(wrong.status(), 401);
    let right = http.get(&public).bearer_auth(TOKEN).send().await.unwrap();
    assert_eq!(right.status(), 200);
    assert!(right.text().await.unwrap().contains("gatehouse_logins_total"));
    server.stop().await;

    // Without a token file, the public port has no /metrics at all.
    let plain = env.start(env.config()).await;
    assert_eq!(http.get(format!("{}/metrics", plain.base)).send().await.unwrap().status(), 404);
    assert!(plain.metrics_url().is_none());
    plain.stop().await;
    env.cleanup().await;
}
