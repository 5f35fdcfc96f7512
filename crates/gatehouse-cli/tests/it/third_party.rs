//! The v1 API for third-party applications: API keys (wrong, rotated, revoked, another application's), each
//! application's own enrollments, an activation for a new address, the consent of a Gatehouse user with a
//! device (approved and denied on the CLI authenticator, without number matching), removal, and bad input —
//! every error in UNLOQ's shape.

use serde_json::{Value, json};

use crate::authenticator::{config_on_port, gatehouse, ok, pending};
use crate::harness::{Backend, Client, Resp, TestEnv};
use crate::on_both_backends;
use crate::registration::add_registered;

on_both_backends!(
    keys_enrollments_and_isolation,
    a_gatehouse_user_consents_on_the_device,
    authenticate_tokens_and_push_fatigue,
    the_widget_works_from_the_registered_origin_only,
    parallel_wrong_codes_on_two_nodes_count_exactly_to_the_limit
);

async fn v1(c: &mut Client, method: reqwest::Method, path: &str, key: Option<&str>, body: Option<Value>) -> Resp {
    let mut req = c.http.request(method, format!("{}{path}", c.base)).header("content-type", "application/json");
    if let Some(key) = key {
        req = req.header("authorization", format!("Bearer {key}"));
    }
    if let Some(b) = body {
        req = req.body(b.to_string());
    }
    c.send(req).await
}

#[track_caller]
fn v1_error(r: &Resp, status: u16, code: &str) {
    assert_eq!(r.status, status, "{}", r.body);
    assert_eq!(r.body["error"]["code"], code, "{}", r.body);
    assert_eq!(r.body["error"]["status"], status.to_string());
    assert_eq!(r.body["error"]["ns"], "api.application");
}

async fn enrolled(c: &mut Client, key: &str, email: &str) -> bool {
    let r = v1(c, reqwest::Method::GET, &format!("/v1/enrolled?email={email}"), Some(key), None).await;
    assert_eq!((r.status, &r.body["type"]), (200, &json!("api.application.enroll.check")), "{}", r.body);
    r.body["result"]["enrolled"].as_bool().unwrap()
}

fn create_app(env: &TestEnv, name: &str) -> String {
    let origin = format!("https://{name}.example");
    ok(&gatehouse(env, &["app", "create", name, "--origin", &origin])).trim().to_owned()
}

async fn keys_enrollments_and_isolation(backend: Backend) {
    let env = TestEnv::new(backend).await;
    let server = env.start(config_on_port(&env)).await;
    let shop = create_app(&env, "shop");
    let blog = create_app(&env, "blog");
    assert!(shop.starts_with("gh_app_") && shop != blog);
    let mut c = server.client();
    let post = reqwest::Method::POST;

    // No key, a wrong one: 401 in the v1 shape.
    v1_error(
        &v1(&mut c, reqwest::Method::GET, "/v1/enrolled?email=pat@example.com", None, None).await,
        401,
        "UNAUTHORIZED",
    );
    let wrong = format!("{}x", &shop[..shop.len() - 1]);
    v1_error(
        &v1(&mut c, post.clone(), "/v1/enroll", Some(&wrong), Some(json!({ "email": "pat@example.com" }))).await,
        401,
        "UNAUTHORIZED",
    );

    // A new address: a QR code for the shop's own profile, enrolled once a device activated.
    let r = v1(&mut c, post.clone(), "/v1/enroll", Some(&shop), Some(json!({ "email": "pat@example.com" }))).await;
    assert_eq!((r.status, &r.body["type"]), (200, &json!("api.application.enroll.user")), "{}", r.body);
    assert_eq!(r.body["result"]["exists"], false);
    assert!(r.body["result"]["qr_url"].as_str().unwrap().starts_with("data:image/svg+xml;base64,"));
    assert!(!enrolled(&mut c, &shop, "pat@example.com").await, "no device yet");
    let uri = r.body["result"]["activation_uri"].as_str().unwrap().to_owned();
    let store = env.dir.path().join("phone.json").display().to_string();
    ok(&gatehouse(&env, &["authenticator", "--store", &store, "enroll", &uri]));
    assert!(enrolled(&mut c, &shop, "Pat@Example.com").await);
    // The blog sees nothing of the shop's enrollment.
    assert!(!enrolled(&mut c, &blog, "pat@example.com").await);
    let r = v1(&mut c, post.clone(), "/v1/enroll", Some(&blog), Some(json!({ "email": "pat@example.com" }))).await;
    assert_eq!(r.body["result"]["exists"], false, "the blog's profile is its own: {}", r.body);

    // Rotation: the old key stops at once; revocation: the key opens nothing.
    let rotated = ok(&gatehouse(&env, &["app", "rotate", "shop"])).trim().to_owned();
    v1_error(
        &v1(&mut c, reqwest::Method::GET, "/v1/enrolled?email=pat@example.com", Some(&shop), None).await,
        401,
        "UNAUTHORIZED",
    );
    assert!(enrolled(&mut c, &rotated, "pat@example.com").await);
    ok(&gatehouse(&env, &["app", "revoke", "blog"]));
    v1_error(
        &v1(&mut c, reqwest::Method::GET, "/v1/enrolled?email=pat@example.com", Some(&blog), None).await,
        401,
        "UNAUTHORIZED",
    );

    // Bad input: 4xx in the v1 shape, nothing changed.
    let bad = [
        (json!({ "email": 5 }), 400, "INVALID_REQUEST"),
        (json!({ "email": "not an address" }), 400, "INVALID_REQUEST"),
        (json!({ "email": "pat@example.com", "extra": true }), 400, "INVALID_REQUEST"),
        (json!([]), 400, "INVALID_REQUEST"),
    ];
    for (body, status, code) in bad {
        v1_error(&v1(&mut c, post.clone(), "/v1/enroll", Some(&rotated), Some(body)).await, status, code);
    }
    let req = c
        .http
        .post(format!("{}/v1/enroll", c.base))
        .header("authorization", format!("Bearer {rotated}"))
        .body("email=x");
    v1_error(&c.send(req).await, 415, "UNSUPPORTED_MEDIA_TYPE");
    v1_error(&v1(&mut c, reqwest::Method::GET, "/v1/enrolled", Some(&rotated), None).await, 400, "INVALID_REQUEST");

    // The admin API manages applications too: create (the key once), list, rotate, revoke.
    let admin = ok(&gatehouse(&env, &["admin", "token", "create", "ops"])).trim().to_owned();
    let bearer = |req: reqwest::RequestBuilder| {
        req.header("authorization", format!("Bearer {admin}")).header("x-same-domain", "1")
    };
    let req = bearer(c.http.post(format!("{}/rest/admin/applications", c.base)))
        .header("content-type", "application/json")
        .body(json!({ "name": "wiki", "origin": "https://wiki.example" }).to_string());
    let r = c.send(req).await;
    assert_eq!(r.status, 200, "{}", r.body);
    let wiki = r.body["data"]["attributes"]["apiKey"].as_str().unwrap().to_owned();
    assert!(!enrolled(&mut c, &wiki, "pat@example.com").await);
    let req = bearer(c.http.post(format!("{}/rest/admin/applications", c.base)))
        .header("content-type", "application/json")
        .body(json!({ "name": "wiki2", "origin": "http://wiki.example" }).to_string());
    assert_eq!(c.send(req).await.status, 400, "plain http only for localhost");
    let r = c.send(bearer(c.http.get(format!("{}/rest/admin/applications", c.base)))).await;
    assert_eq!(r.body["data"]["attributes"]["applications"].as_array().unwrap().len(), 3);
    let rotate = bearer(c.http.post(format!("{}/rest/admin/applications/wiki/rotate", c.base)))
        .header("content-type", "application/json");
    let r = c.send(rotate).await;
    let wiki2 = r.body["data"]["attributes"]["apiKey"].as_str().unwrap().to_owned();
    v1_error(
        &v1(&mut c, reqwest::Method::GET, "/v1/enrolled?email=x@example.com", Some(&wiki), None).await,
        401,
        "UNAUTHORIZED",
    );
    assert_eq!(c.send(bearer(c.http.delete(format!("{}/rest/admin/applications/wiki", c.base)))).await.status, 204);
    v1_error(
        &v1(&mut c, reqwest::Method::GET, "/v1/enrolled?email=x@example.com", Some(&wiki2), None).await,
        401,
        "UNAUTHORIZED",
    );
    assert_eq!(c.send(bearer(c.http.delete(format!("{}/rest/admin/applications/wiki", c.base)))).await.status, 404);

    // Disabling two-step verification ends the shop's enrollment, never the device.
    let r =
        v1(&mut c, reqwest::Method::DELETE, "/v1/enroll", Some(&rotated), Some(json!({ "email": "pat@example.com" })))
            .await;
    assert_eq!((r.status, &r.body["result"]["removed"]), (200, &json!(true)), "{}", r.body);
    assert!(!enrolled(&mut c, &rotated, "pat@example.com").await);
    let profile = env.user(&format!("app.{}.pat@example.com", app_id(&env, "shop"))).await;
    assert_eq!(env.store().await.list_devices(&profile.id).await.unwrap().len(), 1);
    server.stop().await;
    env.cleanup().await;
}

fn app_id(env: &TestEnv, name: &str) -> String {
    let all: Vec<Value> = serde_json::from_str(&ok(&gatehouse(env, &["app", "list", "--json"]))).unwrap();
    all.iter().find(|a| a["name"] == name).unwrap()["id"].as_str().unwrap().to_owned()
}

async fn a_gatehouse_user_consents_on_the_device(backend: Backend) {
    let env = TestEnv::new(backend).await;
    let server = env.start(config_on_port(&env)).await;
    let shop = create_app(&env, "shop");
    let forum = create_app(&env, "forum");
    add_registered(&env, "nora", "nora@example.com").await;
    add_registered(&env, "ivan", "ivan@example.com").await;
    let store = env.dir.path().join("phone.json").display().to_string();
    // The CLI names the configured public URL; this server listens elsewhere: the typed code and --server.
    let out = ok(&gatehouse(&env, &["user", "activate-authenticator", "nora"]));
    let code = out.lines().nth(1).unwrap().trim().to_owned();
    ok(&gatehouse(&env, &["authenticator", "--store", &store, "enroll", &code, "--server", &server.base]));

    // Nora has a device: no QR, a request on it naming the shop, approved without a number.
    let call = tokio::spawn({
        let mut c = server.client();
        let key = shop.clone();
        async move {
            v1(&mut c, reqwest::Method::POST, "/v1/enroll", Some(&key), Some(json!({ "email": "nora@example.com" })))
                .await
        }
    });
    let requests = pending(&env, &store);
    assert_eq!(requests.len(), 1);
    assert_eq!(requests[0]["attributes"]["kind"], "app-enroll");
    assert_eq!(requests[0]["attributes"]["context"]["application"], "shop");
    assert_eq!(requests[0]["attributes"]["choices"], json!([]));
    let listed = ok(&gatehouse(&env, &["authenticator", "--store", &store, "pending"]));
    assert!(listed.contains("asked by shop") && listed.contains("approve or deny"), "{listed}");
    ok(&gatehouse(&env, &["authenticator", "--store", &store, "approve", requests[0]["id"].as_str().unwrap()]));
    let r = call.await.unwrap();
    assert_eq!((r.status, &r.body["result"]["qr_url"]), (200, &Value::Null), "{}", r.body);
    assert_eq!(r.body["result"]["exists"], true);
    let mut c = server.client();
    assert!(enrolled(&mut c, &shop, "nora@example.com").await);

    // The forum's request is denied: refused, and the forum has no enrollment.
    let call = tokio::spawn({
        let mut c = server.client();
        let key = forum.clone();
        async move {
            v1(&mut c, reqwest::Method::POST, "/v1/enroll", Some(&key), Some(json!({ "email": "nora@example.com" })))
                .await
        }
    });
    let requests = pending(&env, &store);
    ok(&gatehouse(&env, &["authenticator", "--store", &store, "deny", requests[0]["id"].as_str().unwrap()]));
    v1_error(&call.await.unwrap(), 403, "ENROLLMENT_DENIED");
    assert!(!enrolled(&mut c, &forum, "nora@example.com").await);

    // Ivan has a Gatehouse account but no device: the shop gets an activation for its own profile of the
    // address, never one that would put a device on Ivan's Gatehouse account.
    let r = v1(&mut c, reqwest::Method::POST, "/v1/enroll", Some(&shop), Some(json!({ "email": "ivan@example.com" })))
        .await;
    let uri = r.body["result"]["activation_uri"].as_str().unwrap().to_owned();
    ok(&gatehouse(&env, &["authenticator", "--store", &format!("{store}.ivan"), "enroll", &uri]));
    assert!(enrolled(&mut c, &shop, "ivan@example.com").await);
    let ivan = env.user("ivan").await;
    assert!(env.store().await.list_devices(&ivan.id).await.unwrap().is_empty(), "a device landed on Ivan's account");
    server.stop().await;
    env.cleanup().await;
}

/// The code of the device in the CLI authenticator's store `path` for time step `step`.
fn device_code(path: &str, step: i64) -> String {
    let store: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let key = gatehouse_core::authenticator::decode(store["accounts"][0]["offlineKey"].as_str().unwrap()).unwrap();
    gatehouse_core::authenticator::time_code(&key, step)
}

async fn authenticate_tokens_and_push_fatigue(backend: Backend) {
    let env = TestEnv::new(backend).await;
    let server = env.start(config_on_port(&env)).await;
    let shop = create_app(&env, "shop");
    let blog = create_app(&env, "blog");
    let mut c = server.client();
    let post = reqwest::Method::POST;
    let r = v1(&mut c, post.clone(), "/v1/enroll", Some(&shop), Some(json!({ "email": "pat@example.com" }))).await;
    let uri = r.body["result"]["activation_uri"].as_str().unwrap().to_owned();
    let store = env.dir.path().join("phone.json").display().to_string();
    ok(&gatehouse(&env, &["authenticator", "--store", &store, "enroll", &uri]));
    let authenticate = |body: Value| {
        let mut c = server.client();
        let key = shop.clone();
        tokio::spawn(async move { v1(&mut c, reqwest::Method::POST, "/v1/authenticate", Some(&key), Some(body)).await })
    };

    // A push: the device sees the application, the IP and the context; approved without a number.
    let call = authenticate(json!({ "email": "pat@example.com", "ip": "203.0.113.9", "action": "Sign in to Shop" }));
    let requests = pending(&env, &store);
    let at = &requests[0]["attributes"];
    assert_eq!((&at["kind"], &at["context"]["application"]), (&json!("app-login"), &json!("shop")));
    assert_eq!((&at["context"]["ip"], &at["context"]["action"]), (&json!("203.0.113.9"), &json!("Sign in to Shop")));
    ok(&gatehouse(&env, &["authenticator", "--store", &store, "approve", requests[0]["id"].as_str().unwrap()]));
    let r = call.await.unwrap();
    assert_eq!((r.status, &r.body["type"]), (200, &json!("api.application.approval.authenticate")), "{}", r.body);
    let token = r.body["result"]["token"].as_str().unwrap().to_owned();

    // The token: another application cannot use it; the shop can, once.
    let exchange = |key: &str, token: &str| {
        let (mut c, key, token) = (server.client(), key.to_owned(), token.to_owned());
        async move { v1(&mut c, reqwest::Method::POST, "/v1/token", Some(&key), Some(json!({ "token": token }))).await }
    };
    v1_error(&exchange(&blog, &token).await, 400, "TOKEN_INVALID");
    let r = exchange(&shop, &token).await;
    assert_eq!((r.status, &r.body["result"]["email"]), (200, &json!("pat@example.com")), "{}", r.body);
    assert_eq!((&r.body["result"]["method"], &r.body["result"]["ip_source"]), (&json!("UNLOQ"), &json!("203.0.113.9")));
    assert!(r.body["result"]["approval_id"].is_string());
    v1_error(&exchange(&shop, &token).await, 400, "TOKEN_INVALID");

    // A code from the device instead of a push (the CLI prints it); the same time step works once.
    let code = ok(&gatehouse(&env, &["authenticator", "--store", &store, "code"])).trim().to_owned();
    let r = authenticate(json!({ "email": "pat@example.com", "method": "OTP", "token": code })).await.unwrap();
    assert_eq!(r.status, 200, "{}", r.body);
    let fresh = r.body["result"]["token"].as_str().unwrap().to_owned();
    let r = authenticate(json!({ "email": "pat@example.com", "method": "OTP", "token": code })).await.unwrap();
    v1_error(&r, 400, "TOKEN_INVALID");
    // Exchanges of one token at once, on two nodes: exactly one wins.
    let other = env.start(env.config()).await;
    let mut racers = Vec::new();
    for i in 0..8 {
        let node = if i % 2 == 0 { &server } else { &other };
        let (mut c, key, token) = (node.client(), shop.clone(), fresh.clone());
        racers.push(tokio::spawn(async move {
            v1(&mut c, reqwest::Method::POST, "/v1/token", Some(&key), Some(json!({ "token": token }))).await.status
        }));
    }
    let mut statuses = Vec::new();
    for r in racers {
        statuses.push(r.await.unwrap());
    }
    statuses.sort_unstable();
    assert_eq!(statuses, [200, 400, 400, 400, 400, 400, 400, 400]);
    other.stop().await;

    // A denial: refused, and from then on no push without a code — push fatigue stops here.
    let call = authenticate(json!({ "email": "pat@example.com" }));
    let requests = pending(&env, &store);
    ok(&gatehouse(&env, &["authenticator", "--store", &store, "deny", requests[0]["id"].as_str().unwrap()]));
    v1_error(&call.await.unwrap(), 403, "APPROVAL_DENIED");
    v1_error(&authenticate(json!({ "email": "pat@example.com" })).await.unwrap(), 403, "TOKEN_REQUIRED");
    let listed: Vec<Value> =
        serde_json::from_str(&ok(&gatehouse(&env, &["authenticator", "--store", &store, "pending", "--json"])))
            .unwrap();
    assert!(listed.is_empty(), "a push went out after a denial");
    let r = authenticate(json!({ "email": "pat@example.com", "token": "00000000" })).await.unwrap();
    v1_error(&r, 400, "TOKEN_INVALID");
    // The next step's code unblocks: the push goes out again, and once approved no code is needed any more.
    let step = gatehouse_core::clock::Clock::now_ms(env.clock.as_ref()).div_euclid(30_000) + 1;
    let call = authenticate(json!({ "email": "pat@example.com", "token": device_code(&store, step) }));
    let requests = pending(&env, &store);
    ok(&gatehouse(&env, &["authenticator", "--store", &store, "approve", requests[0]["id"].as_str().unwrap()]));
    assert_eq!(call.await.unwrap().status, 200);
    let call = authenticate(json!({ "email": "pat@example.com", "generate_token": false }));
    let requests = pending(&env, &store);
    ok(&gatehouse(&env, &["authenticator", "--store", &store, "approve", requests[0]["id"].as_str().unwrap()]));
    let r = call.await.unwrap();
    assert_eq!((r.status, &r.body["result"]["email"]), (200, &json!("pat@example.com")), "{}", r.body);
    assert!(r.body["result"]["token"].is_null());

    // The shop's requests, newest first, paged; the blog sees none of them.
    let r = v1(&mut c, reqwest::Method::GET, "/v1/approvals?per_page=2", Some(&shop), None).await;
    assert_eq!((r.status, &r.body["type"]), (200, &json!("api.application.approval.find")), "{}", r.body);
    assert_eq!(r.body["meta"]["total_count"], 4, "{}", r.body);
    assert_eq!((&r.body["meta"]["page_count"], &r.body["meta"]["current_count"]), (&json!(2), &json!(2)));
    assert_eq!(r.body["result"][0]["status"], "APPROVED");
    assert_eq!(r.body["result"][0]["type"], "AUTHENTICATION");
    let id = r.body["result"][0]["id"].as_str().unwrap().to_owned();
    let r = v1(&mut c, reqwest::Method::GET, "/v1/approvals?page=2&per_page=2", Some(&shop), None).await;
    assert_eq!(r.body["result"][1]["ip_source"], "203.0.113.9", "the oldest, the first push: {}", r.body);
    let r = v1(&mut c, reqwest::Method::GET, &format!("/v1/approvals/{id}"), Some(&shop), None).await;
    assert_eq!((r.status, &r.body["result"]["id"]), (200, &json!(id)));
    v1_error(
        &v1(&mut c, reqwest::Method::GET, &format!("/v1/approvals/{id}"), Some(&blog), None).await,
        404,
        "APPROVAL_NOT_FOUND",
    );
    let r = v1(&mut c, reqwest::Method::GET, "/v1/approvals", Some(&blog), None).await;
    assert_eq!(r.body["meta"]["total_count"], 0);

    // A token expires after a minute; a person not enrolled by the application is refused. (Half a minute on,
    // so the next step's code is inside the server's window.)
    env.clock.advance_ms(30_000);
    let code = device_code(&store, step + 1);
    let r = authenticate(json!({ "email": "pat@example.com", "method": "OTP", "token": code })).await.unwrap();
    let late = r.body["result"]["token"].as_str().unwrap().to_owned();
    env.clock.advance_ms(61_000);
    v1_error(&exchange(&shop, &late).await, 400, "TOKEN_INVALID");
    let r = v1(&mut c, post, "/v1/authenticate", Some(&blog), Some(json!({ "email": "pat@example.com" }))).await;
    v1_error(&r, 404, "NOT_ENROLLED");
    server.stop().await;
    env.cleanup().await;
}

/// A widget call from the browser on `origin` (none: not from a browser).
async fn widget(c: &mut Client, app: &str, action: &str, origin: Option<&str>, body: Value) -> Resp {
    let mut req = c
        .http
        .post(format!("{}/v1/widget/{app}/{action}", c.base))
        .header("content-type", "application/json")
        .body(body.to_string());
    if let Some(o) = origin {
        req = req.header("origin", o);
    }
    c.send(req).await
}

async fn the_widget_works_from_the_registered_origin_only(backend: Backend) {
    let env = TestEnv::new(backend).await;
    let server = env.start(config_on_port(&env)).await;
    let callback = "https://shop.example/login/callback";
    let shop =
        ok(&gatehouse(&env, &["app", "create", "shop", "--origin", "https://shop.example", "--callback", callback]))
            .trim()
            .to_owned();
    let forum = ok(&gatehouse(
        &env,
        &["app", "create", "forum", "--origin", "https://forum.example", "--callback", "https://forum.example/cb"],
    ))
    .trim()
    .to_owned();
    let blog = create_app(&env, "blog");
    let (shop_id, forum_id) = (app_id(&env, "shop"), app_id(&env, "forum"));
    let mut c = server.client();
    let post = reqwest::Method::POST;
    let r =
        v1(&mut c, post.clone(), "/v1/enroll", Some(&shop), Some(json!({ "email": "pat@example.com", "name": "Pat" })))
            .await;
    let uri = r.body["result"]["activation_uri"].as_str().unwrap().to_owned();
    let store = env.dir.path().join("phone.json").display().to_string();
    ok(&gatehouse(&env, &["authenticator", "--store", &store, "enroll", &uri]));

    // The application's server gets a ticket with its key; the page gets the ticket and the public id.
    let ticket_for = |key: &str, email: &str| {
        let (mut c, key, email) = (server.client(), key.to_owned(), email.to_owned());
        async move {
            let body = json!({ "email": email, "ip": "203.0.113.9" });
            v1(&mut c, reqwest::Method::POST, "/v1/widget/ticket", Some(&key), Some(body)).await
        }
    };
    let r = ticket_for(&shop, "pat@example.com").await;
    assert_eq!((r.status, &r.body["type"]), (200, &json!("api.application.widget.ticket")), "{}", r.body);
    assert_eq!(r.body["result"]["app"], shop_id.as_str());
    let ticket = r.body["result"]["ticket"].as_str().unwrap().to_owned();
    v1_error(&ticket_for(&shop, "nobody@example.com").await, 404, "NOT_ENROLLED");
    v1_error(&ticket_for(&blog, "pat@example.com").await, 409, "NO_CALLBACK");
    v1_error(&ticket_for("gh_app_wrong", "pat@example.com").await, 401, "UNAUTHORIZED");
    for body in [
        json!({ "email": 5 }),
        json!({ "email": "pat@example.com", "extra": 1 }),
        json!({ "email": "pat@example.com", "ip": "x".repeat(65) }),
    ] {
        let r = v1(&mut c, post.clone(), "/v1/widget/ticket", Some(&shop), Some(body)).await;
        v1_error(&r, 400, "INVALID_REQUEST");
    }

    // The script itself is for any page to load.
    let r = c.http.get(format!("{}/v1/widget.js", c.base)).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert!(r.headers()["content-type"].to_str().unwrap().starts_with("text/javascript"));
    assert!(r.text().await.unwrap().contains("/v1/widget/"));

    // The browser's preflight: allowed for the registered origin only.
    let preflight = |origin: &'static str| {
        c.http
            .request(reqwest::Method::OPTIONS, format!("{}/v1/widget/{shop_id}/start", c.base))
            .header("origin", origin)
            .header("access-control-request-method", "POST")
            .header("access-control-request-headers", "content-type")
            .send()
    };
    let r = preflight("https://shop.example").await.unwrap();
    assert_eq!(r.status(), 204);
    assert_eq!(r.headers()["access-control-allow-origin"], "https://shop.example");
    let r = preflight("https://evil.example").await.unwrap();
    assert_eq!(r.status(), 403);
    assert!(r.headers().get("access-control-allow-origin").is_none());

    // From another origin, without one, or the shop's ticket on the forum: refused, and nothing is pushed.
    let start = json!({ "ticket": ticket });
    for (app, origin, status, code) in [
        (&shop_id, Some("https://evil.example"), 403, "ORIGIN_REFUSED"),
        (&shop_id, Some("https://shop.example.evil.example"), 403, "ORIGIN_REFUSED"),
        (&shop_id, None, 403, "ORIGIN_REFUSED"),
        (&forum_id, Some("https://shop.example"), 403, "ORIGIN_REFUSED"),
        (&forum_id, Some("https://forum.example"), 401, "TICKET_INVALID"),
    ] {
        let r = widget(&mut c, app, "start", origin, start.clone()).await;
        v1_error(&r, status, code);
        let allowed = r.headers.get("access-control-allow-origin").map(|v| v.to_str().unwrap());
        assert_eq!(allowed, (status == 401).then_some("https://forum.example"), "{origin:?}");
    }
    let forged = json!({ "ticket": format!("{}x", &ticket[..ticket.len() - 1]) });
    v1_error(&widget(&mut c, &shop_id, "start", Some("https://shop.example"), forged).await, 401, "TICKET_INVALID");
    let r = widget(&mut c, &shop_id, "start", Some("https://shop.example"), json!({ "ticket": 5 })).await;
    v1_error(&r, 400, "INVALID_REQUEST");
    let listed: Vec<Value> =
        serde_json::from_str(&ok(&gatehouse(&env, &["authenticator", "--store", &store, "pending", "--json"])))
            .unwrap();
    assert!(listed.is_empty(), "a refused call pushed a request");

    // From the shop's page: a request with a number to pick on the device; approved, a redirect with a token.
    let shop_origin = Some("https://shop.example");
    let r = widget(&mut c, &shop_id, "start", shop_origin, start.clone()).await;
    assert_eq!((r.status, &r.body["result"]["token_required"]), (200, &json!(false)), "{}", r.body);
    let (id, number) =
        (r.body["result"]["approval_id"].as_str().unwrap().to_owned(), r.body["result"]["number"].clone());
    let requests = pending(&env, &store);
    let at = &requests[0]["attributes"];
    assert_eq!((&at["kind"], &at["context"]["application"]), (&json!("app-login"), &json!("shop")));
    assert_eq!(at["context"]["ip"], "203.0.113.9");
    assert!(at["choices"].as_array().unwrap().contains(&number) && at["choices"].as_array().unwrap().len() == 3);
    let wait = json!({ "ticket": ticket, "approval_id": id });
    let waiting = tokio::spawn({
        let (mut c, shop_id, wait) = (server.client(), shop_id.clone(), wait.clone());
        async move { widget(&mut c, &shop_id, "wait", Some("https://shop.example"), wait).await }
    });
    let n = number.as_u64().unwrap().to_string();
    ok(&gatehouse(&env, &["authenticator", "--store", &store, "approve", &id, "--number", &n]));
    let r = waiting.await.unwrap();
    assert_eq!((r.status, &r.body["result"]["status"]), (200, &json!("approved")), "{}", r.body);
    let redirect = r.body["result"]["redirect"].as_str().unwrap().to_owned();
    let token = redirect.strip_prefix(&format!("{callback}?token=")).unwrap().to_owned();
    // The approval gives one token: a second poll gets none.
    v1_error(&widget(&mut c, &shop_id, "wait", shop_origin, wait).await, 409, "ALREADY_USED");
    let body = json!({ "token": token, "sid": "shop-session-1" });
    v1_error(&v1(&mut c, post.clone(), "/v1/token", Some(&forum), Some(body.clone())).await, 400, "TOKEN_INVALID");
    let r = v1(&mut c, post.clone(), "/v1/token", Some(&shop), Some(body.clone())).await;
    assert_eq!((r.status, &r.body["result"]["email"]), (200, &json!("pat@example.com")), "{}", r.body);
    assert_eq!((&r.body["result"]["method"], &r.body["result"]["approval_id"]), (&json!("UNLOQ"), &json!(id)));
    assert_eq!((&r.body["result"]["name"], &r.body["result"]["sid"]), (&json!("Pat"), &json!("shop-session-1")));
    v1_error(&v1(&mut c, post.clone(), "/v1/token", Some(&shop), Some(body)).await, 400, "TOKEN_INVALID");

    // A denial: no more pushes from the widget either, only a code from the device.
    let r = widget(&mut c, &shop_id, "start", shop_origin, start.clone()).await;
    let id = r.body["result"]["approval_id"].as_str().unwrap().to_owned();
    ok(&gatehouse(&env, &["authenticator", "--store", &store, "deny", &id]));
    let r = widget(&mut c, &shop_id, "wait", shop_origin, json!({ "ticket": ticket, "approval_id": id })).await;
    assert_eq!((&r.body["result"]["status"], &r.body["result"]["token_required"]), (&json!("denied"), &json!(true)));
    let r = widget(&mut c, &shop_id, "start", shop_origin, start.clone()).await;
    assert_eq!((r.status, &r.body["result"]["token_required"]), (200, &json!(true)), "{}", r.body);
    assert!(r.body["result"]["approval_id"].is_null());
    let r = widget(&mut c, &shop_id, "code", shop_origin, json!({ "ticket": ticket, "code": "00000000" })).await;
    v1_error(&r, 400, "TOKEN_INVALID");
    let code = ok(&gatehouse(&env, &["authenticator", "--store", &store, "code"])).trim().to_owned();
    let r = widget(&mut c, &shop_id, "code", shop_origin, json!({ "ticket": ticket, "code": code })).await;
    assert_eq!(r.status, 200, "{}", r.body);
    let token = r.body["result"]["redirect"].as_str().unwrap().rsplit_once("token=").unwrap().1.to_owned();
    let r = v1(&mut c, post.clone(), "/v1/token", Some(&shop), Some(json!({ "token": token }))).await;
    assert_eq!((r.status, &r.body["result"]["method"]), (200, &json!("OTP")), "{}", r.body);
    let r = widget(&mut c, &shop_id, "start", shop_origin, start).await;
    assert_eq!(r.body["result"]["token_required"], false, "a code clears the denial: {}", r.body);

    // Registering, rotating and revoking applications is in the audit log, without the key.
    ok(&gatehouse(&env, &["app", "rotate", "blog"]));
    ok(&gatehouse(&env, &["app", "revoke", "blog"]));
    let audit = env.store().await.list_audit(200).await.unwrap();
    let events: Vec<(&str, &str)> = audit
        .iter()
        .filter(|e| e.event.starts_with("application."))
        .map(|e| (e.event.as_str(), e.details["application"].as_str().unwrap()))
        .collect();
    for expected in
        [("application.created", "shop"), ("application.key_rotated", "blog"), ("application.revoked", "blog")]
    {
        assert!(events.contains(&expected), "{expected:?} in {events:?}");
    }
    assert!(audit.iter().all(|e| !e.details.to_string().contains(&shop)), "the key is in the log");
    assert!(audit.iter().filter(|e| e.event.starts_with("application.")).all(|e| e.actor == "admin:cli"));
    server.stop().await;
    env.cleanup().await;
}

async fn parallel_wrong_codes_on_two_nodes_count_exactly_to_the_limit(backend: Backend) {
    let env = TestEnv::new(backend).await;
    let server = env.start(config_on_port(&env)).await;
    let other = env.start(env.config()).await;
    let origin = "https://shop.example";
    let shop =
        ok(&gatehouse(&env, &["app", "create", "shop", "--origin", origin, "--callback", "https://shop.example/cb"]))
            .trim()
            .to_owned();
    let shop_id = app_id(&env, "shop");
    let mut c = server.client();
    let post = reqwest::Method::POST;
    let r = v1(&mut c, post.clone(), "/v1/enroll", Some(&shop), Some(json!({ "email": "pat@example.com" }))).await;
    let uri = r.body["result"]["activation_uri"].as_str().unwrap().to_owned();
    let store = env.dir.path().join("phone.json").display().to_string();
    ok(&gatehouse(&env, &["authenticator", "--store", &store, "enroll", &uri]));
    let r =
        v1(&mut c, post.clone(), "/v1/widget/ticket", Some(&shop), Some(json!({ "email": "pat@example.com" }))).await;
    let ticket = r.body["result"]["ticket"].as_str().unwrap().to_owned();

    // Twelve wrong codes at once, half on each node: the counter is checked and counted in one statement, so
    // exactly the demo's limit (3) plus the one that passes it are looked at and the rest are refused unread.
    let mut racers = Vec::new();
    for i in 0..12 {
        let node = if i % 2 == 0 { &server } else { &other };
        let (mut c, app, body) = (node.client(), shop_id.clone(), json!({ "ticket": ticket, "code": "00000000" }));
        racers.push(tokio::spawn(async move {
            let r = widget(&mut c, &app, "code", Some("https://shop.example"), body).await;
            (r.status, r.body["error"]["code"].as_str().unwrap_or_default().to_owned())
        }));
    }
    let mut seen = Vec::new();
    for r in racers {
        seen.push(r.await.unwrap());
    }
    let wrong = seen.iter().filter(|(s, c)| *s == 400 && c == "TOKEN_INVALID").count();
    let refused = seen.iter().filter(|(s, c)| *s == 403 && c == "USER_LOCKED").count();
    assert_eq!((wrong, refused), (4, 8), "{seen:?}");
    let profile = env.user(&format!("app.{shop_id}.pat@example.com")).await;
    let counter = format!("{}:PUBLIC", env.config().authenticator.method_id);
    assert_eq!(profile.failed_attempts.get(&counter), Some(&4), "{:?}", profile.failed_attempts);
    // Past the limit even the right code opens nothing, by the widget or server to server.
    let code = ok(&gatehouse(&env, &["authenticator", "--store", &store, "code"])).trim().to_owned();
    let r = widget(&mut c, &shop_id, "code", Some(origin), json!({ "ticket": ticket, "code": code })).await;
    v1_error(&r, 403, "USER_LOCKED");
    let body = json!({ "email": "pat@example.com", "method": "OTP", "token": code });
    v1_error(&v1(&mut c, post, "/v1/authenticate", Some(&shop), Some(body)).await, 403, "USER_LOCKED");
    other.stop().await;
    server.stop().await;
    env.cleanup().await;
}
