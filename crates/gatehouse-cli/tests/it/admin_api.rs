//! The admin API with a token made by `gatehouse admin token create`.

use std::process::Command;

use crate::harness::{Backend, Client, TestEnv};
use crate::on_both_backends;

on_both_backends!(helpdesk_sees_why_and_unlocks, search_is_a_prefix_of_a_login_name);

const PW: &str = "Old-Cobalt-Lantern-1";

pub(crate) fn create_token(env: &TestEnv, name: &str) -> String {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_gatehouse"));
    cmd.args(["admin", "token", "create", name])
        .env_remove("GATEHOUSE_CONFIG")
        .env("GATEHOUSE_DATABASE_URL", &env.db_url)
        .env("GATEHOUSE_DATA_DIR", env.dir.path())
        .env("GATEHOUSE_SERVER__SECRET_KEY", &env.key);
    if let Some(schema) = &env.schema {
        cmd.env("GATEHOUSE_STORAGE__SCHEMA", schema);
    }
    let out = cmd.output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap().trim().to_owned()
}

pub(crate) async fn admin(
    c: &mut Client,
    method: reqwest::Method,
    path: &str,
    token: &str,
    body: Option<serde_json::Value>,
) -> crate::harness::Resp {
    let mut req = c
        .http
        .request(method, format!("{}{path}", c.base))
        .header("authorization", format!("Bearer {token}"))
        .header("x-same-domain", "1")
        .header("content-type", "application/json");
    if let Some(b) = body {
        req = req.body(b.to_string());
    }
    c.send(req).await
}

async fn helpdesk_sees_why_and_unlocks(backend: Backend) {
    let env = TestEnv::new(backend).await;
    let server = env.start(env.config()).await;
    env.add_user("mia", Some("mia@example.com"), Some(PW)).await;
    env.add_user("ned", Some("ned@example.com"), Some(PW)).await;
    let token = create_token(&env, "helpdesk");
    assert!(token.starts_with("gha_"));
    let mut c = server.client();
    use reqwest::Method as M;

    assert_eq!(c.get("/rest/admin/users").await.status, 401);
    assert_eq!(admin(&mut c, M::GET, "/rest/admin/users", "gha_forged", None).await.status, 401);

    let r = admin(&mut c, M::GET, "/rest/admin/users", &token, None).await;
    r.expect(200);
    assert_eq!(r.body["data"].as_array().unwrap().len(), 2);
    let r = admin(&mut c, M::GET, "/rest/admin/users?search=MI", &token, None).await;
    assert_eq!(r.body["data"].as_array().unwrap().len(), 1);
    let r = admin(&mut c, M::GET, "/rest/admin/users?colour=blue", &token, None).await;
    assert_eq!((r.status, r.error_codes()), (400, vec!["INVALID_REQUEST".to_owned()]));
    let r = admin(&mut c, M::GET, "/rest/admin/users?limit=0", &token, None).await;
    assert_eq!(r.body["errors"][0]["source"]["pointer"], "/limit", "{}", r.body);

    // Pages in login-name order, keyed by the last login name found; the search text is taken literally.
    for i in 0..5 {
        env.add_user(&format!("page{i}"), Some(&format!("page{i}@example.org")), None).await;
    }
    let names = |r: &crate::harness::Resp| -> Vec<String> {
        r.body["data"]
            .as_array()
            .unwrap()
            .iter()
            .map(|u| u["attributes"]["username"].as_str().unwrap().to_owned())
            .collect()
    };
    let mut seen = Vec::new();
    let mut query = "/rest/admin/users?search=PAGE&limit=2".to_owned();
    loop {
        let r = admin(&mut c, M::GET, &query, &token, None).await;
        r.expect(200);
        seen.extend(names(&r));
        match r.body["meta"]["nextCursor"].as_str() {
            Some(cursor) => query = format!("/rest/admin/users?search=PAGE&limit=2&cursor={cursor}"),
            None => break,
        }
    }
    assert_eq!(seen, ["page0", "page1", "page2", "page3", "page4"]);
    let r = admin(&mut c, M::GET, "/rest/admin/users?search=%25", &token, None).await;
    assert_eq!(names(&r), Vec::<String>::new(), "`%` is no wildcard");

    // Wrong passwords lock mia; the helpdesk sees why.
    for _ in 0..6 {
        server.client().login("mia", "nope").await;
    }
    let r = admin(&mut c, M::GET, "/rest/admin/users/mia", &token, None).await;
    let a = &r.body["data"]["attributes"];
    assert_eq!(a["locked"], true);
    assert_eq!(a["lockReason"], "LockReason.TooManyAuthAtts.PASSWORD");
    assert_eq!(a["failedAttempts"]["PASSWORD"], 6);
    assert_eq!(a["unlockCount"], 0);
    assert!(a.get("passwordHash").is_none() && !r.body.to_string().contains("argon2"));

    let r = admin(&mut c, M::POST, "/rest/admin/users/mia/unlock", &token, None).await;
    r.expect(200);
    assert_eq!(
        (r.body["data"]["attributes"]["locked"].as_bool(), r.body["data"]["attributes"]["failedAttempts"].clone()),
        (Some(false), serde_json::json!({}))
    );
    server.client().login("mia", PW).await.expect(200);

    // Lock with a reason, reset one counter, delete.
    let r =
        admin(&mut c, M::POST, "/rest/admin/users/ned/lock", &token, Some(serde_json::json!({ "reason": 7 }))).await;
    assert_eq!((r.status, r.error_codes()), (400, vec!["INVALID_REQUEST".to_owned()]));
    let r = admin(
        &mut c,
        M::POST,
        "/rest/admin/users/ned/lock",
        &token,
        Some(serde_json::json!({ "reason": "LockReason.FraudReportedByUser" })),
    )
    .await;
    assert_eq!(r.body["data"]["attributes"]["lockReason"], "LockReason.FraudReportedByUser");
    assert_eq!(server.client().login("ned", PW).await.error_codes(), vec!["USER_LOCKED"]);
    server.client().login("mia", "nope").await;
    let r = admin(&mut c, M::DELETE, "/rest/admin/users/mia/counters/PASSWORD", &token, None).await;
    assert_eq!(r.body["data"]["attributes"]["failedAttempts"], serde_json::json!({}));
    assert_eq!(admin(&mut c, M::DELETE, "/rest/admin/users/ned", &token, None).await.status, 204);
    let r = admin(&mut c, M::GET, "/rest/admin/users/ned", &token, None).await;
    assert_eq!((r.status, r.error_codes()), (404, vec!["USER_NOT_FOUND".to_owned()]));

    let audit = env.store().await.list_audit(500).await.unwrap();
    for event in ["user.unlocked", "user.locked", "counter.reset", "user.deleted"] {
        assert!(audit.iter().any(|e| e.event == event && e.actor == "admin:token:helpdesk"), "{event}");
    }
    server.stop().await;
    env.cleanup().await;
}

/// `search` matches the start of a username or alias, case-insensitively and literally; each user once, in the
/// order of the smallest login name it matched, paged by that name.
async fn search_is_a_prefix_of_a_login_name(backend: Backend) {
    use gatehouse_core::admin::{AddUser, InitialPassword, UserAdmin};
    use gatehouse_core::crypto::{HashParams, Passwords};
    use reqwest::Method as M;

    let env = TestEnv::new(backend).await;
    let server = env.start(env.config()).await;
    let store = env.store().await;
    let hasher = Passwords::new(HashParams { memory_kib: 1024, iterations: 1, parallelism: 1 }).unwrap();
    let policy = env.config().password_policy;
    let users = UserAdmin {
        store: store.as_ref(),
        email_as_alias: false,
        hasher: &hasher,
        policy: &policy,
        clock: env.clock.as_ref(),
        random: &gatehouse_core::random::SystemRandom,
        actor: "admin:test".into(),
    };
    for (name, aliases) in [
        ("ann", &["ann.smith@example.com"][..]),
        ("anna", &[]),
        ("bob", &["annie"]),
        ("zed", &["Annex"]),
        ("a_b", &[]),
        ("axb", &[]),
        ("carl", &["50%off"]),
        ("50off", &[]),
        ("erin", &["er1"]),
        ("ivy", &[]),
        ("ivya", &["iv0"]),
        ("ivyb", &[]),
    ] {
        let mut context = std::collections::BTreeMap::new();
        context.insert("email".to_owned(), format!("{name}@annual.example"));
        users
            .add(AddUser {
                username: name.into(),
                email: None,
                phone: None,
                aliases: aliases.iter().map(|a| (*a).to_owned()).collect(),
                roles: vec![],
                context,
                password: InitialPassword::None,
            })
            .await
            .unwrap();
    }
    let token = create_token(&env, "helpdesk");
    let mut c = server.client();
    let mut list = async |query: &str| -> (Vec<String>, Option<String>) {
        let r = admin(&mut c, M::GET, &format!("/rest/admin/users?{query}"), &token, None).await;
        r.expect(200);
        let names = r.body["data"]
            .as_array()
            .unwrap()
            .iter()
            .map(|u| u["attributes"]["username"].as_str().unwrap().to_owned())
            .collect();
        (names, r.body["meta"]["nextCursor"].as_str().map(str::to_owned))
    };

    // ann matches by her username and her alias, and is listed once, by the smaller; bob and zed by an alias.
    assert_eq!(list("search=ann").await.0, ["ann", "anna", "zed", "bob"]);
    assert_eq!(list("search=%20AnN%20").await.0, ["ann", "anna", "zed", "bob"], "case and blanks do not matter");
    assert_eq!(list("search=ANN.S").await.0, ["ann"]);
    assert_eq!(list("search=annex").await.0, ["zed"]);
    // ivya lies between two users found by their usernames but is found by her alias: once, at the alias.
    assert_eq!(list("search=iv").await.0, ["ivya", "ivy", "ivyb"]);
    assert_eq!(list("search=iv&limit=2").await, (vec!["ivya".into(), "ivy".into()], Some("ivy".into())));
    assert_eq!(list("search=iv&limit=2&cursor=ivy").await, (vec!["ivyb".into()], None));
    assert_eq!(list("search=nn").await.0, Vec::<String>::new(), "a prefix, not a part");
    assert_eq!(list("search=annual").await.0, Vec::<String>::new(), "context data is not searched");

    // Pages keyed by the login name found; a user matching twice is never on two pages.
    assert_eq!(list("search=ann&limit=2").await, (vec!["ann".into(), "anna".into()], Some("anna".into())));
    assert_eq!(list("search=ann&limit=2&cursor=anna").await, (vec!["zed".into(), "bob".into()], Some("annie".into())));
    assert_eq!(list("search=ann&limit=2&cursor=annie").await, (vec![], None));
    let mut seen = Vec::new();
    let mut cursor = None;
    loop {
        let query = match &cursor {
            None => "search=ANN&limit=1".to_owned(),
            Some(c) => format!("search=ANN&limit=1&cursor={c}"),
        };
        let (names, next) = list(&query).await;
        seen.extend(names);
        match next {
            Some(next) => cursor = Some(next),
            None => break,
        }
    }
    assert_eq!(seen, ["ann", "anna", "zed", "bob"]);
    // erin's alias sorts before her username: found once by the alias where both match, also on the page after
    // it; by her username where only that matches. bob's alias lies before the prefix of his username.
    assert_eq!(list("search=er").await, (vec!["erin".into()], None));
    assert_eq!(list("search=er&limit=1").await, (vec!["erin".into()], Some("er1".into())));
    assert_eq!(list("search=er&limit=1&cursor=er1").await, (vec![], None));
    assert_eq!(list("search=eri").await.0, ["erin"]);
    assert_eq!(list("search=b").await.0, ["bob"]);
    // A cursor before the prefix starts at the prefix.
    assert_eq!(list("search=ann&cursor=a").await.0, ["ann", "anna", "zed", "bob"]);

    // `%` and `_` are characters like any other.
    assert_eq!(list("search=a_").await.0, ["a_b"]);
    assert_eq!(list("search=50%25").await.0, ["carl"]);
    assert_eq!(list("search=%25").await.0, Vec::<String>::new());
    assert_eq!(list("search=_").await.0, Vec::<String>::new());

    // Without a search: every user, paged by username.
    let mut seen = Vec::new();
    let mut cursor = None;
    loop {
        let query = cursor.as_ref().map_or_else(|| "limit=4".to_owned(), |c| format!("limit=4&cursor={c}"));
        let (names, next) = list(&query).await;
        seen.extend(names);
        match next {
            Some(next) => cursor = Some(next),
            None => break,
        }
    }
    assert_eq!(seen, ["50off", "a_b", "ann", "anna", "axb", "bob", "carl", "erin", "ivy", "ivya", "ivyb", "zed"]);

    let r = admin(&mut c, M::GET, "/rest/admin/users?search=a%00", &token, None).await;
    assert_eq!((r.status, r.body["errors"][0]["source"]["pointer"].as_str()), (400, Some("/search")), "{}", r.body);
    server.stop().await;
    env.cleanup().await;
}
