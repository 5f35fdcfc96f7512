//! Three processes, as an integrator runs them: `gatehouse serve`, the example application
//! (`examples/relying-app`, its own users and passwords) and the CLI authenticator as the phone. Two-step
//! verification is enabled in the application, a login waits for the approval on the phone, a denial keeps the
//! session at the second step and makes the next attempt need a code, and after disabling the password alone
//! logs in.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::authenticator::{gatehouse, ok, pending};
use crate::harness::{Backend, TestEnv};
use crate::on_both_backends;

on_both_backends!(an_application_adds_the_authenticator_to_its_own_login);

const GATEHOUSE: &str = env!("CARGO_BIN_EXE_gatehouse");
const PASSWORD: &str = "a long password of the shop";

/// A child process, killed when the test ends (passed or not).
struct Process {
    child: Child,
    log: PathBuf,
}

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// The example application's binary, built with the workspace next to `gatehouse`.
fn relying_app_binary() -> PathBuf {
    let path = Path::new(GATEHOUSE).with_file_name("relying-app");
    assert!(path.is_file(), "{} is missing: build it with `cargo build -p relying-app`", path.display());
    path
}

async fn wait_until_up(url: &str, process: &mut Process) {
    let http = reqwest::Client::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if http.get(url).send().await.is_ok_and(|r| r.status() == 200) {
            return;
        }
        let exited = process.child.try_wait().unwrap();
        assert!(
            exited.is_none() && Instant::now() < deadline,
            "{url} did not come up: {}",
            std::fs::read_to_string(&process.log).unwrap_or_default()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// `gatehouse serve` on the environment's database, as its own process.
async fn serve(env: &TestEnv) -> (Process, String) {
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let log = env.dir.path().join("gatehouse.log");
    let mut cmd = Command::new(GATEHOUSE);
    cmd.args(["serve", "--bind", &format!("127.0.0.1:{port}")])
        .env_remove("GATEHOUSE_CONFIG")
        .env("GATEHOUSE_DATABASE_URL", &env.db_url)
        .env("GATEHOUSE_DATA_DIR", env.dir.path())
        .env("GATEHOUSE_SERVER__SECRET_KEY", &env.key)
        .env("GATEHOUSE_SERVER__PUBLIC_URL", &base)
        .env("GATEHOUSE_HASHING__MEMORY_KIB", "1024")
        .env("GATEHOUSE_HASHING__ITERATIONS", "1")
        .env("GATEHOUSE_RATE_LIMITS__ENABLED", "false")
        .env("GATEHOUSE_AUTHENTICATOR__POLL_WAIT_SECONDS", "5")
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap());
    if let Some(schema) = &env.schema {
        cmd.env("GATEHOUSE_STORAGE__SCHEMA", schema);
    }
    let mut process = Process { child: cmd.spawn().unwrap(), log };
    wait_until_up(&format!("{base}/health/ready"), &mut process).await;
    (process, base)
}

/// `application/x-www-form-urlencoded`, as a browser encodes a field.
fn form_encode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => char::from(b).to_string(),
            b' ' => "+".to_owned(),
            other => format!("%{other:02X}"),
        })
        .collect()
}

/// A browser of the application: keeps its cookies, does not follow redirects (the test reads them).
struct Browser {
    http: reqwest::Client,
    base: String,
}

impl Browser {
    async fn get(&self, path: &str) -> (u16, String, String) {
        let r = self.http.get(format!("{}{path}", self.base)).send().await.unwrap();
        let location = r.headers().get("location").map(|v| v.to_str().unwrap().to_owned()).unwrap_or_default();
        (r.status().as_u16(), location, r.text().await.unwrap())
    }

    /// The CSRF token of the form on `page`.
    async fn csrf(&self, page: &str) -> String {
        let (status, _, html) = self.get(page).await;
        assert_eq!(status, 200, "{page}: {html}");
        let at = html.find("name=\"csrf\" value=\"").unwrap_or_else(|| panic!("no CSRF field on {page}: {html}"));
        let rest = &html[at + "name=\"csrf\" value=\"".len()..];
        rest[..rest.find('"').unwrap()].to_owned()
    }

    /// Posts the form of `page` to `action`: status, location, body.
    async fn submit(&self, page: &str, action: &str, fields: &[(&str, &str)]) -> (u16, String, String) {
        let csrf = self.csrf(page).await;
        let mut form: Vec<(&str, &str)> = fields.to_vec();
        form.push(("csrf", &csrf));
        let body: Vec<String> = form.iter().map(|(k, v)| format!("{}={}", form_encode(k), form_encode(v))).collect();
        let r = self
            .http
            .post(format!("{}{action}", self.base))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body.join("&"))
            .send()
            .await
            .unwrap();
        let location = r.headers().get("location").map(|v| v.to_str().unwrap().to_owned()).unwrap_or_default();
        (r.status().as_u16(), location, r.text().await.unwrap())
    }

    async fn login(&self) -> String {
        let (status, location, body) =
            self.submit("/login", "/login", &[("email", "pat@example.com"), ("password", PASSWORD)]).await;
        assert_eq!(status, 303, "{body}");
        location
    }

    async fn logout(&self) {
        let (status, _, body) = self.submit("/account", "/logout", &[]).await;
        assert_eq!(status, 303, "{body}");
    }
}

async fn an_application_adds_the_authenticator_to_its_own_login(backend: Backend) {
    gatehouse_server::install_crypto_provider();
    let env = TestEnv::new(backend).await;
    let (gatehouse_process, gatehouse_base) = serve(&env).await;
    let port = free_port();
    let app_origin = format!("http://localhost:{port}");
    let callback = format!("{app_origin}/login/callback");
    let key = ok(&gatehouse(&env, &["app", "create", "shop", "--origin", &app_origin, "--callback", &callback]))
        .trim()
        .to_owned();
    let log = env.dir.path().join("relying-app.log");
    let child = Command::new(relying_app_binary())
        .args(["--listen", &format!("127.0.0.1:{port}"), "--two-step", "server"])
        .arg("--database")
        .arg(env.dir.path().join("shop.db"))
        .env("GATEHOUSE_URL", &gatehouse_base)
        .env("GATEHOUSE_API_KEY", &key)
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    let mut app = Process { child, log };
    let base = format!("http://127.0.0.1:{port}");
    wait_until_up(&format!("{base}/healthz"), &mut app).await;
    let http = reqwest::Client::builder()
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(60))
        .build()
        .unwrap();
    let browser = std::sync::Arc::new(Browser { http, base });
    let phone = env.dir.path().join("phone.json").display().to_string();

    // Sign up with the application's own password, and turn two-step verification on: the QR page's activation
    // link goes to the phone, and the application switches only once Gatehouse confirms.
    let fields = [("email", "pat@example.com"), ("password", PASSWORD)];
    let (status, location, body) = browser.submit("/signup", "/signup", &fields).await;
    assert_eq!((status, location.as_str()), (303, "/account"), "{body}");
    let (status, _, page) = browser.submit("/account", "/account/two-step/enable", &[]).await;
    assert_eq!(status, 200, "{page}");
    let at = page.find("<code id=\"activation-uri\">").expect("an activation link on the page");
    let rest = &page[at + "<code id=\"activation-uri\">".len()..];
    let uri = rest[..rest.find('<').unwrap()].replace("&amp;", "&");
    ok(&gatehouse(&env, &["authenticator", "--store", &phone, "enroll", &uri]));
    let (status, location, _) = browser.submit("/account", "/account/two-step/confirm", &[]).await;
    assert_eq!((status, location.as_str()), (303, "/account?notice=enabled"));
    browser.logout().await;

    // The password is no longer enough: the session waits at the second step, every page sends it back there.
    assert_eq!(browser.login().await, "/login/two-step");
    let (status, location, _) = browser.get("/account").await;
    assert_eq!((status, location.as_str()), (303, "/login/two-step"), "was_2fa is false");
    // The application asks Gatehouse (server to server, held open); the phone shows who asks, and approves.
    let asking = {
        let browser = browser.clone();
        tokio::spawn(async move { browser.submit("/login/two-step", "/login/two-step", &[("code", "")]).await })
    };
    let requests = pending(&env, &phone);
    assert_eq!(requests[0]["attributes"]["context"]["application"], "shop");
    ok(&gatehouse(&env, &["authenticator", "--store", &phone, "approve", requests[0]["id"].as_str().unwrap()]));
    let (status, location, body) = asking.await.unwrap();
    assert_eq!((status, location.as_str()), (303, "/account"), "{body}");
    let (status, _, page) = browser.get("/account").await;
    assert!(status == 200 && page.contains("pat@example.com"), "{page}");
    browser.logout().await;

    // A denial: the session stays at the second step, and the next attempt needs a code — no push goes out.
    assert_eq!(browser.login().await, "/login/two-step");
    let asking = {
        let browser = browser.clone();
        tokio::spawn(async move { browser.submit("/login/two-step", "/login/two-step", &[("code", "")]).await })
    };
    let requests = pending(&env, &phone);
    ok(&gatehouse(&env, &["authenticator", "--store", &phone, "deny", requests[0]["id"].as_str().unwrap()]));
    let (_, _, page) = asking.await.unwrap();
    assert!(page.contains("denied on your phone"), "{page}");
    let (status, location, _) = browser.get("/account").await;
    assert_eq!((status, location.as_str()), (303, "/login/two-step"), "a denial keeps was_2fa false");
    let (_, _, page) = browser.submit("/login/two-step", "/login/two-step", &[("code", "")]).await;
    assert!(page.contains("a code from the app is needed"), "TOKEN_REQUIRED: {page}");
    let listed = ok(&gatehouse(&env, &["authenticator", "--store", &phone, "pending", "--json"]));
    assert_eq!(listed.trim(), "[]", "a push went out after the denial");
    let code = ok(&gatehouse(&env, &["authenticator", "--store", &phone, "code"])).trim().to_owned();
    let (status, location, body) = browser.submit("/login/two-step", "/login/two-step", &[("code", &code)]).await;
    assert_eq!((status, location.as_str()), (303, "/account"), "{body}");

    // Two-step verification off: the password alone logs in again; the phone keeps its device.
    let (status, _, body) = browser.submit("/account", "/account/two-step/disable", &[]).await;
    assert_eq!(status, 303, "{body}");
    browser.logout().await;
    assert_eq!(browser.login().await, "/account");
    let (status, _, _) = browser.get("/account").await;
    assert_eq!(status, 200);
    let r = reqwest::Client::new()
        .get(format!("{gatehouse_base}/v1/enrolled?email=pat@example.com"))
        .header("authorization", format!("Bearer {key}"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.json::<serde_json::Value>().await.unwrap()["result"]["enrolled"], false);
    drop(app);
    drop(gatehouse_process);
    env.cleanup().await;
}
