//! The OpenAPI document: served at `/openapi.json`, committed as `docs/openapi.json` (this test fails when the
//! copy is stale: rerun with `GATEHOUSE_UPDATE_OPENAPI=1`), and every operation it names is one the server
//! routes.

use serde_json::Value;

use crate::harness::{Backend, TestEnv};

const COMMITTED: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/openapi.json");

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_document_is_served_committed_and_complete() {
    let env = TestEnv::new(Backend::Sqlite).await;
    let mut config = env.config();
    // With a token file, /metrics is routed on the public port too (401 without the token).
    let token_file = env.dir.path().join("metrics-token");
    std::fs::write(&token_file, "a-metrics-token-of-some-length").unwrap();
    config.metrics.bearer_token_file = Some(token_file);
    let server = env.start(config).await;
    let mut c = server.client();
    let r = c.get("/openapi.json").await;
    r.expect(200);
    let served = r.body.clone();
    assert_eq!(served["openapi"], "3.1.0");

    let text = format!("{}\n", serde_json::to_string_pretty(&served).unwrap());
    if std::env::var_os("GATEHOUSE_UPDATE_OPENAPI").is_some() {
        std::fs::write(COMMITTED, &text).unwrap();
    }
    let committed: Value =
        serde_json::from_str(&std::fs::read_to_string(COMMITTED).unwrap_or_default()).unwrap_or(Value::Null);
    assert!(
        committed == served,
        "docs/openapi.json is stale: run `GATEHOUSE_UPDATE_OPENAPI=1 cargo nextest run openapi` (or \
         `gatehouse openapi > docs/openapi.json`) and commit it"
    );

    // Next-step and error codes are enums taken from the code.
    let schemas = &served["components"]["schemas"];
    let next: Vec<&str> = schemas["NextStep"]["enum"].as_array().unwrap().iter().filter_map(Value::as_str).collect();
    assert!(next.contains(&"EMAIL_OTP_REQUIRED") && next.contains(&"APP_2FA_POLLING_OR_OFFLINE_REQUIRED"));
    let codes: Vec<&str> = schemas["ErrorCode"]["enum"].as_array().unwrap().iter().filter_map(Value::as_str).collect();
    for code in ["EMAIL_OTP_WRONG", "USER_LOCKED", "INVALID_REQUEST", "CSRF_HEADER_MISSING", "RATE_LIMITED"] {
        assert!(codes.contains(&code), "{code}");
    }

    // Every documented operation is routed: the router's own 404 / 405 never answers it.
    let mut operations = 0;
    for (path, item) in served["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            operations += 1;
            assert!(op["responses"]["default"].is_object(), "{method} {path}: every error is documented");
            let url =
                path.split('/').map(|seg| if seg.starts_with('{') { "x" } else { seg }).collect::<Vec<_>>().join("/");
            let method = reqwest::Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
            let req = c
                .http
                .request(method.clone(), format!("{}{url}", server.base))
                .header("x-same-domain", "1")
                .header("content-type", "application/json");
            let req = if method == reqwest::Method::GET { req } else { req.body("{}") };
            let r = c.send(req).await;
            let code = r.error_codes().first().cloned().unwrap_or_default();
            assert!(
                r.status < 500 && code != "NOT_FOUND" && code != "METHOD_NOT_ALLOWED",
                "{method} {url}: {} {}",
                r.status,
                r.body
            );
        }
    }
    assert!(operations > 60, "{operations}");
    server.stop().await;
    env.cleanup().await;
}
