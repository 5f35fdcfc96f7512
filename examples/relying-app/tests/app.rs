//! The application as a browser sees it: the real binary on a loopback port with a fresh database, and a
//! Gatehouse URL where nothing listens — so every second step has to fail closed.
#![expect(clippy::unwrap_used, clippy::expect_used, reason = "tests fail loudly")]

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use reqwest::StatusCode;
use reqwest::header::{CONTENT_TYPE, LOCATION};

const PASSWORD: &str = "correct horse battery";

/// The running binary; killed when the test ends, passed or not.
struct App {
    child: Child,
    base: String,
    database: PathBuf,
    log: PathBuf,
    _dir: tempfile::TempDir,
}

impl Drop for App {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

impl App {
    async fn start(two_step: &str) -> Self {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let dir = tempfile::tempdir().unwrap();
        let database = dir.path().join("app.db");
        let log = dir.path().join("app.log");
        let port = free_port();
        // Bound and released at once: nothing listens there.
        let gatehouse = format!("http://127.0.0.1:{}", free_port());
        let child = Command::new(env!("CARGO_BIN_EXE_relying-app"))
            .args(["--listen", &format!("127.0.0.1:{port}"), "--two-step", two_step])
            .arg("--database")
            .arg(&database)
            .env("GATEHOUSE_URL", &gatehouse)
            .env("GATEHOUSE_API_KEY", "gh_app_test-key")
            .env("RUST_LOG", "info")
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap();
        let app = Self { child, base: format!("http://127.0.0.1:{port}"), database, log, _dir: dir };
        let probe = reqwest::Client::new();
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let ok = probe.get(app.url("/healthz")).send().await.is_ok_and(|r| r.status() == StatusCode::OK);
            if ok {
                break;
            }
            assert!(Instant::now() < deadline, "relying-app did not start: {}", app.log_text());
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        app
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// A browser: keeps cookies, does not follow redirects (so the tests see each 303).
    fn browser() -> reqwest::Client {
        reqwest::Client::builder().cookie_store(true).redirect(reqwest::redirect::Policy::none()).build().unwrap()
    }

    async fn get(&self, browser: &reqwest::Client, path: &str) -> Page {
        Page::of(browser.get(self.url(path)).send().await.unwrap()).await
    }

    async fn post(&self, browser: &reqwest::Client, path: &str, fields: &[(&str, &str)]) -> Page {
        let body = form_urlencoded::Serializer::new(String::new()).extend_pairs(fields).finish();
        let response = browser
            .post(self.url(path))
            .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
            .body(body)
            .send()
            .await
            .unwrap();
        Page::of(response).await
    }

    /// Posts the form at `path` with the CSRF token of the page `from`.
    async fn submit(&self, browser: &reqwest::Client, from: &str, path: &str, fields: &[(&str, &str)]) -> Page {
        let csrf = self.get(browser, from).await.csrf();
        let mut all = vec![("csrf", csrf.as_str())];
        all.extend_from_slice(fields);
        self.post(browser, path, &all).await
    }

    async fn sign_up(&self, browser: &reqwest::Client, email: &str) {
        let page = self.submit(browser, "/signup", "/signup", &[("email", email), ("password", PASSWORD)]).await;
        page.redirects_to("/account");
    }

    async fn log_in(&self, browser: &reqwest::Client, email: &str, password: &str) -> Page {
        self.submit(browser, "/login", "/login", &[("email", email), ("password", password)]).await
    }

    async fn log_out(&self, browser: &reqwest::Client) {
        self.submit(browser, "/account", "/logout", &[]).await.redirects_to("/");
    }

    async fn database(&self) -> sqlx::SqlitePool {
        let options = sqlx::sqlite::SqliteConnectOptions::new().filename(&self.database);
        sqlx::SqlitePool::connect_with(options).await.unwrap()
    }

    /// The `was_2fa` of every session of `email`.
    async fn was_2fa(&self, email: &str) -> Vec<bool> {
        sqlx::query_scalar("SELECT s.was_2fa FROM sessions s JOIN users u ON u.id = s.user_id WHERE u.email = ?")
            .bind(email)
            .fetch_all(&self.database().await)
            .await
            .unwrap()
    }
}

struct Page {
    status: StatusCode,
    location: Option<String>,
    body: String,
}

impl Page {
    async fn of(response: reqwest::Response) -> Self {
        let status = response.status();
        let location = response.headers().get(LOCATION).map(|l| l.to_str().unwrap().to_owned());
        Self { status, location, body: response.text().await.unwrap() }
    }

    #[track_caller]
    fn redirects_to(&self, path: &str) {
        assert_eq!(
            (self.status, self.location.as_deref()),
            (StatusCode::SEE_OTHER, Some(path)),
            "expected a redirect to {path}: {}",
            self.body
        );
    }

    #[track_caller]
    fn shows(&self, status: StatusCode, text: &str) {
        assert_eq!(self.status, status, "{}", self.body);
        assert!(self.body.contains(text), "expected {text:?} in {}", self.body);
    }

    fn csrf(&self) -> String {
        let start = self.body.find("name=\"csrf\" value=\"").expect("a form with a CSRF token") + 19;
        self.body[start..].split('"').next().unwrap().to_owned()
    }
}

#[tokio::test]
async fn sign_up_and_log_in_with_the_applications_own_password() {
    let app = App::start("widget").await;
    let browser = App::browser();

    let short =
        app.submit(&browser, "/signup", "/signup", &[("email", "ann@example.com"), ("password", "short")]).await;
    short.shows(StatusCode::BAD_REQUEST, "at least 10 characters");
    app.sign_up(&browser, "ann@example.com").await;
    let account = app.get(&browser, "/account").await;
    account.shows(StatusCode::OK, "ann@example.com");
    assert!(account.body.contains("Two-step verification: <strong>off</strong>"), "{}", account.body);

    app.log_out(&browser).await;
    app.get(&browser, "/account").await.redirects_to("/login");

    // The address is taken whatever its case.
    let taken =
        app.submit(&browser, "/signup", "/signup", &[("email", "ANN@example.com"), ("password", PASSWORD)]).await;
    taken.shows(StatusCode::BAD_REQUEST, "already exists");

    // A wrong password and an unknown address get the same page.
    let wrong = app.log_in(&browser, "ann@example.com", "not the password").await;
    let unknown = app.log_in(&browser, "nobody@example.com", "not the password").await;
    wrong.shows(StatusCode::UNAUTHORIZED, "Wrong email address or password.");
    assert_eq!(unknown.status, wrong.status);
    assert_eq!(unknown.body.replace("nobody@example.com", "…"), wrong.body.replace("ann@example.com", "…"));
    app.get(&browser, "/account").await.redirects_to("/login");

    app.log_in(&browser, "Ann@Example.com", PASSWORD).await.redirects_to("/account");
    app.get(&browser, "/account").await.shows(StatusCode::OK, "ann@example.com");
    app.get(&browser, "/signup").await.redirects_to("/account");
    assert!(!app.log_text().contains(PASSWORD), "a password was logged");
}

#[tokio::test]
async fn pages_behind_the_login_send_strangers_to_it() {
    let app = App::start("widget").await;
    let stranger = App::browser();
    app.get(&stranger, "/account").await.redirects_to("/login");
    app.post(&stranger, "/account/two-step/enable", &[]).await.redirects_to("/login");
    app.get(&stranger, "/login/two-step").await.redirects_to("/login");
    app.get(&stranger, "/login/callback?token=x").await.redirects_to("/login");
    app.get(&stranger, "/").await.shows(StatusCode::OK, "href=\"/login\"");
    assert_eq!(app.get(&stranger, "/no-such-page").await.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn a_second_factor_holds_the_login_at_the_second_step_while_gatehouse_is_unreachable() {
    let app = App::start("server").await;
    let browser = App::browser();
    app.sign_up(&browser, "bo@example.com").await;
    app.log_out(&browser).await;
    sqlx::query("UPDATE users SET second_factor = 'GATEHOUSE' WHERE email = 'bo@example.com'")
        .execute(&app.database().await)
        .await
        .unwrap();

    app.log_in(&browser, "bo@example.com", PASSWORD).await.redirects_to("/login/two-step");
    assert_eq!(app.was_2fa("bo@example.com").await, [false]);
    app.get(&browser, "/account").await.redirects_to("/login/two-step");
    app.get(&browser, "/login").await.shows(StatusCode::OK, "Log in");
    let two_step = app.get(&browser, "/login/two-step").await;
    two_step.shows(StatusCode::OK, "Send a request to my phone");
    assert!(two_step.body.contains("or type a code from the authenticator"), "{}", two_step.body);
    let csrf = two_step.csrf();
    for path in ["/account/two-step/disable", "/account/two-step/enable", "/account/two-step/confirm"] {
        app.post(&browser, path, &[("csrf", &csrf)]).await.redirects_to("/login/two-step");
    }

    // Gatehouse cannot be asked: no push, no code check, and no way in.
    let push = app.post(&browser, "/login/two-step", &[("csrf", &csrf), ("send", "push"), ("code", "")]).await;
    push.shows(StatusCode::SERVICE_UNAVAILABLE, "Two-step verification is unavailable, try again later");
    let code = app.post(&browser, "/login/two-step", &[("csrf", &csrf), ("code", "123456")]).await;
    code.shows(StatusCode::SERVICE_UNAVAILABLE, "Two-step verification is unavailable, try again later");
    app.get(&browser, "/account").await.redirects_to("/login/two-step");

    let callback = app.get(&browser, "/login/callback?token=x").await;
    callback.redirects_to("/login/two-step?problem=unavailable");
    app.get(&browser, "/login/two-step?problem=unavailable")
        .await
        .shows(StatusCode::SERVICE_UNAVAILABLE, "Two-step verification is unavailable");
    app.get(&browser, "/account").await.redirects_to("/login/two-step");
    assert_eq!(app.was_2fa("bo@example.com").await, [false]);
    assert!(!app.log_text().contains("gh_app_test-key"), "the API key was logged");

    // Giving up is allowed.
    app.post(&browser, "/logout", &[("csrf", &csrf)]).await.redirects_to("/");
    assert!(app.was_2fa("bo@example.com").await.is_empty());
}

#[tokio::test]
async fn the_widget_page_falls_back_to_a_code_when_gatehouse_is_unreachable() {
    let app = App::start("widget").await;
    let browser = App::browser();
    app.sign_up(&browser, "cy@example.com").await;
    app.log_out(&browser).await;
    sqlx::query("UPDATE users SET second_factor = 'GATEHOUSE' WHERE email = 'cy@example.com'")
        .execute(&app.database().await)
        .await
        .unwrap();
    app.log_in(&browser, "cy@example.com", PASSWORD).await.redirects_to("/login/two-step");

    // No ticket, so no widget; the code form is still there.
    let page = app.get(&browser, "/login/two-step").await;
    page.shows(StatusCode::SERVICE_UNAVAILABLE, "Two-step verification is unavailable");
    assert!(page.body.contains("Use a code from the app instead"), "{}", page.body);
    assert!(!page.body.contains("<script"), "{}", page.body);
    app.get(&browser, "/login/callback?token=x").await.redirects_to("/login/two-step?problem=unavailable");
    app.get(&browser, "/login/callback").await.redirects_to("/login/two-step?problem=token-refused");
    app.get(&browser, "/account").await.redirects_to("/login/two-step");
}

#[tokio::test]
async fn a_post_without_the_csrf_token_is_refused() {
    let app = App::start("widget").await;
    let browser = App::browser();
    app.get(&browser, "/login").await;
    let bare = app.post(&browser, "/login", &[("email", "dee@example.com"), ("password", PASSWORD)]).await;
    bare.shows(StatusCode::FORBIDDEN, "This form has expired");
    let signup = app.post(&browser, "/signup", &[("email", "dee@example.com"), ("password", PASSWORD)]).await;
    assert_eq!(signup.status, StatusCode::FORBIDDEN);

    // Another visitor's token is not this one's.
    let other = App::browser();
    let foreign = app.get(&other, "/signup").await.csrf();
    let forged = app
        .post(&browser, "/signup", &[("csrf", &foreign), ("email", "dee@example.com"), ("password", PASSWORD)])
        .await;
    assert_eq!(forged.status, StatusCode::FORBIDDEN);

    // Signed in, the session's token counts: without it nothing changes.
    app.sign_up(&browser, "dee@example.com").await;
    assert_eq!(app.post(&browser, "/logout", &[]).await.status, StatusCode::FORBIDDEN);
    assert_eq!(app.post(&browser, "/logout", &[("csrf", &foreign)]).await.status, StatusCode::FORBIDDEN);
    app.get(&browser, "/account").await.shows(StatusCode::OK, "dee@example.com");
}
