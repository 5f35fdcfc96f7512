//! The web pages' guarantees that need no browser (the walk in headless Chromium is scripts/test-ui): a strict
//! CSP and no framing on every page, forms refused without this browser's CSRF token (and nothing counted),
//! the language from `Accept-Language` or `?lang=`, and an unknown flow's page a 404.

use crate::harness::{Backend, Client, Resp, TestEnv};
use crate::on_both_backends;

on_both_backends!(pages_are_framed_by_nothing_and_forms_need_the_token);

fn header<'a>(r: &'a Resp, name: &str) -> &'a str {
    r.headers.get(name).and_then(|v| v.to_str().ok()).unwrap_or("")
}

async fn form(c: &mut Client, path: &str, fields: &[(&str, &str)]) -> Resp {
    let body: String = fields
        .iter()
        .map(|(k, v)| {
            format!("{k}={}", v.replace('%', "%25").replace('&', "%26").replace('=', "%3D").replace(' ', "+"))
        })
        .collect::<Vec<_>>()
        .join("&");
    // Redirects are looked at, not followed: the 303 after a login carries the session cookie.
    let http = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
    let req =
        http.post(format!("{}{path}", c.base)).header("content-type", "application/x-www-form-urlencoded").body(body);
    c.send(req).await
}

fn csrf_of(page: &Resp) -> String {
    let html = page.body.as_str().unwrap_or_default();
    let start = html.find("name=\"csrf\" value=\"").expect("a CSRF field") + "name=\"csrf\" value=\"".len();
    html[start..start + 64].to_owned()
}

async fn pages_are_framed_by_nothing_and_forms_need_the_token(backend: Backend) {
    let env = TestEnv::new(backend).await;
    let server = env.start(env.config()).await;
    env.add_user("uma", Some("uma@example.com"), Some("Old-Cobalt-Lantern-1")).await;

    let mut c = server.client();
    let r = c.get("/").await;
    assert_eq!(r.status, 200, "`/` leads to the login page (redirects are followed here)");
    let page = c.get("/ui/app/auth/login").await;
    assert_eq!(page.status, 200);
    let csp = header(&page, "content-security-policy");
    for directive in ["default-src 'none'", "script-src 'self'", "frame-ancestors 'none'", "form-action 'self'"] {
        assert!(csp.contains(directive), "{directive} missing from {csp}");
    }
    assert!(!csp.contains("unsafe-inline"));
    assert_eq!(header(&page, "x-frame-options"), "DENY");
    let html = page.body.as_str().unwrap();
    assert!(!html.contains("<script>") && !html.contains("style=\""), "nothing inline");
    assert!(c.jar.contains_key("gatehouse_csrf"), "a CSRF cookie for a new browser");

    // Without the token (or with another browser's), nothing runs: not even a failed attempt is counted.
    let r = form(&mut c, "/ui/app/auth/login", &[("op", "password"), ("username", "uma"), ("password", "wrong")]).await;
    assert_eq!(r.status, 403);
    assert!(r.body.as_str().unwrap().contains("CSRF") || r.body.as_str().unwrap().contains("expired"));
    let mut other = server.client();
    let foreign = csrf_of(&other.get("/ui/app/auth/login").await);
    let fields = [("csrf", foreign.as_str()), ("op", "password"), ("username", "uma"), ("password", "wrong")];
    assert_eq!(form(&mut c, "/ui/app/auth/login", &fields).await.status, 403);
    assert!(env.user("uma").await.failed_attempts.is_empty(), "a refused form counted an attempt");

    // With it, the login runs: a wrong password is told on the page, the right one leads to the account.
    let token = csrf_of(&page);
    let fields = [("csrf", token.as_str()), ("op", "password"), ("username", "uma"), ("password", "wrong")];
    let r = form(&mut c, "/ui/app/auth/login", &fields).await;
    assert_eq!(r.status, 400);
    assert_eq!(env.user("uma").await.failed_attempts.get("PASSWORD"), Some(&1));
    let fields =
        [("csrf", token.as_str()), ("op", "password"), ("username", "uma"), ("password", "Old-Cobalt-Lantern-1")];
    let r = form(&mut c, "/ui/app/auth/login", &fields).await;
    assert_eq!((r.status, header(&r, "location")), (303, "/ui/app/account"));
    let account = c.get("/ui/app/account").await;
    assert_eq!(account.status, 200);
    assert!(account.body.as_str().unwrap().contains("uma"));

    // The language: Accept-Language, then a switch that sticks.
    let mut german = server.client();
    let req =
        german.http.get(format!("{}/ui/app/auth/login", german.base)).header("accept-language", "de-CH, en;q=0.5");
    let r = german.send(req).await;
    assert!(r.body.as_str().unwrap().contains("lang=\"de\""));
    let r = c.get("/ui/app/auth/login?lang=de").await;
    assert!(r.body.as_str().unwrap().contains("lang=\"de\""));
    let r = c.get("/ui/app/auth/login").await;
    assert!(r.body.as_str().unwrap().contains("lang=\"de\""), "the chosen language sticks");

    assert_eq!(c.get("/ui/app/self-service/flow/no-such-flow").await.status, 404);
    assert_eq!(c.get("/ui/static/app.js").await.status, 200);
    server.stop().await;
    env.cleanup().await;
}
