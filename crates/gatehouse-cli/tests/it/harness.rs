//! Test servers, HTTP clients and outbox readers.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use gatehouse_core::admin::{AddUser, InitialPassword, UserAdmin};
use std::sync::atomic::{AtomicI64, Ordering};

use gatehouse_core::clock::{Clock, Millis, SystemClock};
use gatehouse_core::config::{Config, ConfigSource, Transport, load};
use gatehouse_core::crypto::{HashParams, Passwords, ServerKey};
use gatehouse_core::ports::Store;
use gatehouse_core::random::{SystemRandom, random_id};
use gatehouse_core::user::User;
use gatehouse_server::{RunningServer, StartOptions};
use serde_json::Value;

/// Real time that tests can move forward: background work (retries, leases) keeps running while a test
/// jumps past an expiry.
#[derive(Debug, Default)]
pub struct JumpClock(AtomicI64);

impl JumpClock {
    pub fn advance_ms(&self, ms: i64) {
        self.0.fetch_add(ms, Ordering::SeqCst);
    }
}

impl Clock for JumpClock {
    fn now_ms(&self) -> Millis {
        SystemClock.now_ms() + self.0.load(Ordering::SeqCst)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// Runs an `async fn name(backend: Backend)` once on each backend.
#[macro_export]
macro_rules! on_both_backends {
    ($($name:ident),+ $(,)?) => {
        $(
            mod $name {
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn sqlite() {
                    super::$name($crate::harness::Backend::Sqlite).await;
                }

                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn postgres() {
                    super::$name($crate::harness::Backend::Postgres).await;
                }
            }
        )+
    };
}

pub fn postgres_url() -> String {
    std::env::var("GATEHOUSE_TEST_POSTGRES_URL").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into())
}

/// One test's world: a temporary data directory, a database (SQLite file or PostgreSQL schema), a key, a clock.
pub struct TestEnv {
    pub dir: tempfile::TempDir,
    pub db_url: String,
    pub schema: Option<String>,
    pub key: String,
    pub clock: Arc<JumpClock>,
    store: tokio::sync::OnceCell<Arc<dyn Store>>,
}

impl TestEnv {
    pub async fn new(backend: Backend) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let (db_url, schema) = match backend {
            Backend::Sqlite => (format!("sqlite://{}", dir.path().join("gatehouse.db").display()), None),
            Backend::Postgres => (postgres_url(), Some(format!("gh_test_{}", &random_id(&SystemRandom)[..16]))),
        };
        let key = ServerKey::generate_base64(&SystemRandom);
        Self { dir, db_url, schema, key, clock: Arc::new(JumpClock::default()), store: tokio::sync::OnceCell::new() }
    }

    pub fn outbox(&self) -> PathBuf {
        self.dir.path().join("outbox")
    }

    /// The demo configuration with this environment's database, key and outbox, fast hashing and fast polling.
    pub fn config(&self) -> Config {
        let mut c = load(&ConfigSource::Demo).unwrap();
        c.server.bind = "127.0.0.1:0".into();
        c.server.data_dir = self.dir.path().to_path_buf();
        c.server.secret_key = Some(self.key.clone());
        c.server.shutdown_grace_seconds = 5;
        c.storage.url = Some(self.db_url.clone());
        c.storage.schema.clone_from(&self.schema);
        c.hashing.memory_kib = 1024;
        c.hashing.iterations = 1;
        c.messaging.transport = Transport::File;
        c.messaging.poll_interval_ms = 25;
        c.messaging.retry_initial_delay_ms = 50;
        c.messaging.retry_max_delay_ms = 200;
        // The demo pads public self-service answers to 300 ms; tests measure that once (stealth.rs), not everywhere.
        c.public_self_service.response_time_ms = 0;
        // Tests fire many calls from one address; the limits are tested on their own (rate_limits.rs).
        c.rate_limits.enabled = false;
        c.validate().unwrap();
        c
    }

    pub async fn start(&self, config: Config) -> TestServer {
        self.start_with(config, None).await
    }

    /// A server on `store` instead of one it opens itself (a counting wrapper, say).
    pub async fn start_with(&self, config: Config, store: Option<Arc<dyn Store>>) -> TestServer {
        let clock: Arc<dyn Clock> = self.clock.clone();
        let options = StartOptions { config, clock, random: Arc::new(SystemRandom), store };
        let running = gatehouse_server::start(options).await.unwrap();
        TestServer { base: format!("http://{}", running.addr), running: Some(running) }
    }

    /// A store of its own on the environment's database (one per environment, made on first use).
    pub async fn store(&self) -> Arc<dyn Store> {
        self.store
            .get_or_init(|| async {
                gatehouse_store::open(&gatehouse_store::OpenOptions {
                    url: self.db_url.clone(),
                    schema: self.schema.clone(),
                    max_connections: 4,
                    migrate: true,
                    lock_wait: std::time::Duration::from_secs(10),
                })
                .await
                .unwrap()
            })
            .await
            .clone()
    }

    /// Another, independent store on the same database (another node).
    pub async fn second_store(&self) -> Arc<dyn Store> {
        gatehouse_store::open(&gatehouse_store::OpenOptions {
            url: self.db_url.clone(),
            schema: self.schema.clone(),
            max_connections: 2,
            migrate: false,
            lock_wait: std::time::Duration::from_secs(10),
        })
        .await
        .unwrap()
    }

    /// Creates a user through the same service the CLI uses.
    pub async fn add_user(&self, username: &str, email: Option<&str>, password: Option<&str>) -> User {
        let store = self.store().await;
        let hasher = Passwords::new(HashParams { memory_kib: 1024, iterations: 1, parallelism: 1 }).unwrap();
        let policy = self.config().password_policy;
        let admin = UserAdmin {
            store: store.as_ref(),
            email_as_alias: false,
            hasher: &hasher,
            policy: &policy,
            clock: self.clock.as_ref(),
            random: &SystemRandom,
            actor: "admin:test".into(),
        };
        admin
            .add(AddUser {
                username: username.into(),
                email: email.map(str::to_owned),
                phone: None,
                aliases: vec![],
                roles: vec![],
                context: Default::default(),
                password: password.map_or(InitialPassword::None, |p| InitialPassword::Plain(p.into())),
            })
            .await
            .unwrap()
    }

    pub async fn user(&self, username: &str) -> User {
        self.store().await.find_user_by_login(username).await.unwrap().unwrap()
    }

    /// Drops the PostgreSQL schema (SQLite files go with the temporary directory).
    pub async fn cleanup(mut self) {
        if let Some(schema) = self.schema.take() {
            drop_schema(&self.db_url, &schema).await.unwrap();
        }
    }
}

impl Drop for TestEnv {
    /// A test that panics before [`TestEnv::cleanup`] still drops its schema (a run left one behind per failure).
    /// The drop runs on a thread and a runtime of its own: this one may be unwinding inside the test's runtime.
    fn drop(&mut self) {
        if let Some(schema) = self.schema.take() {
            let url = self.db_url.clone();
            let dropped = std::thread::spawn(move || {
                let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
                runtime.block_on(drop_schema(&url, &schema)).map_err(std::io::Error::other)
            })
            .join();
            if !matches!(dropped, Ok(Ok(()))) {
                eprintln!("could not drop a test schema: {dropped:?}");
            }
        }
    }
}

/// Drops `schema`, waiting at most 5 s for the locks of connections still open (a server the panic left running).
async fn drop_schema(url: &str, schema: &str) -> Result<(), sqlx::Error> {
    use sqlx::Connection as _;
    let mut conn = sqlx::PgConnection::connect(url).await?;
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!("SET lock_timeout = '5s'; DROP SCHEMA IF EXISTS \"{schema}\" CASCADE")))
        .execute(&mut conn)
        .await?;
    conn.close().await
}

pub struct TestServer {
    pub base: String,
    running: Option<RunningServer>,
}

impl TestServer {
    /// `/metrics` on the server's metrics address (`metrics.listen`).
    pub fn metrics_url(&self) -> Option<String> {
        let addr = self.running.as_ref()?.metrics_addr?;
        Some(format!("http://{addr}/metrics"))
    }

    pub fn client(&self) -> Client {
        Client::new(&self.base)
    }

    pub async fn stop(mut self) {
        if let Some(r) = self.running.take() {
            r.shutdown().await.unwrap();
        }
    }
}

/// A browser-like client of one flow: remembers the flow cookie; sends the CSRF header and JSON type.
#[derive(Clone)]
pub struct Client {
    pub http: reqwest::Client,
    pub base: String,
    /// The public self-service flow cookie (`gatehouse_flow`).
    pub cookie: Option<String>,
    /// Every other cookie (authentication flow, authenticated session).
    pub jar: std::collections::BTreeMap<String, String>,
}

#[derive(Debug, Clone)]
pub struct Resp {
    pub status: u16,
    pub headers: reqwest::header::HeaderMap,
    pub body: Value,
}

impl Resp {
    #[track_caller]
    pub fn expect(&self, status: u16) -> &Self {
        assert_eq!(self.status, status, "unexpected status, body: {}", self.body);
        self
    }

    pub fn next_step(&self) -> Option<&str> {
        self.body["data"]["attributes"]["nextStep"].as_str().or_else(|| self.body["meta"]["nextStep"].as_str())
    }

    pub fn next_auth_step(&self) -> Option<&str> {
        self.body["data"]["attributes"]["nextAuthStep"].as_str().or_else(|| self.body["meta"]["nextAuthStep"].as_str())
    }

    pub fn error_codes(&self) -> Vec<String> {
        self.body["errors"]
            .as_array()
            .map(|a| a.iter().filter_map(|e| e["code"].as_str().map(str::to_owned)).collect())
            .unwrap_or_default()
    }

    /// Everything a caller can see of an answer, less what differs between any two calls (date, request id,
    /// body length, timestamp, flow id): what must be identical for users who must not be told apart.
    pub fn observable(&self) -> (u16, Vec<(String, String)>, Value) {
        let mut headers: Vec<(String, String)> = self
            .headers
            .iter()
            .filter(|(k, _)| !matches!(k.as_str(), "date" | "x-request-id" | "content-length"))
            .map(|(k, v)| (k.to_string(), v.to_str().unwrap_or("").to_owned()))
            .map(|(k, v)| {
                // Cookie values are random; their names and attributes are what must match.
                if k != "set-cookie" {
                    return (k, v);
                }
                let blanked = match v.split_once('=') {
                    Some((name, rest)) => {
                        let attributes = rest.split_once(';').map_or("", |(_, a)| a);
                        let value = if rest.starts_with(';') || rest.is_empty() { "" } else { "<value>" };
                        format!("{name}={value};{attributes}")
                    }
                    None => v,
                };
                (k, blanked)
            })
            .collect();
        headers.sort();
        (self.status, headers, self.shape())
    }

    /// The body with its volatile fields (timestamp, flow session id) blanked.
    pub fn shape(&self) -> Value {
        let mut b = self.body.clone();
        if b["meta"]["timestamp"].is_string() {
            b["meta"]["timestamp"] = Value::from("<ts>");
        }
        if b["data"]["id"].is_string() {
            b["data"]["id"] = Value::from("<id>");
        }
        b
    }
}

impl Client {
    pub fn new(base: &str) -> Self {
        // Building a client loads the system's root certificates: share one per thread (threads are never
        // shared between the runtimes of two tests, so no pooled connection outlives its runtime).
        thread_local! {
            static HTTP: reqwest::Client = {
                gatehouse_server::install_crypto_provider();
                reqwest::Client::builder().timeout(Duration::from_secs(60)).build().unwrap()
            };
        }
        let http = HTTP.with(Clone::clone);
        Self { http, base: base.to_owned(), cookie: None, jar: Default::default() }
    }

    /// The same client (same flow cookie) against another server.
    pub fn on(&self, server: &TestServer) -> Self {
        Self { base: server.base.clone(), ..self.clone() }
    }

    pub async fn post(&mut self, path: &str, body: Option<Value>) -> Resp {
        let mut req = self
            .http
            .post(format!("{}{path}", self.base))
            .header("content-type", "application/json")
            .header("x-same-domain", "1");
        if let Some(b) = body {
            req = req.body(b.to_string());
        }
        self.send(req).await
    }

    pub async fn get(&mut self, path: &str) -> Resp {
        let req = self.http.get(format!("{}{path}", self.base));
        self.send(req).await
    }

    pub async fn delete(&mut self, path: &str) -> Resp {
        let req = self.http.delete(format!("{}{path}", self.base)).header("x-same-domain", "1");
        self.send(req).await
    }

    fn cookie_header(&self) -> Option<String> {
        let mut all: Vec<String> = self.jar.iter().map(|(k, v)| format!("{k}={v}")).collect();
        if let Some(c) = &self.cookie {
            all.push(format!("gatehouse_flow={c}"));
        }
        (!all.is_empty()).then(|| all.join("; "))
    }

    pub async fn send(&mut self, mut req: reqwest::RequestBuilder) -> Resp {
        if let Some(cookies) = self.cookie_header() {
            req = req.header("cookie", cookies);
        }
        let res = req.send().await.unwrap();
        let status = res.status().as_u16();
        let headers = res.headers().clone();
        for sc in headers.get_all("set-cookie") {
            let sc = sc.to_str().unwrap();
            let Some((name, rest)) = sc.split_once('=') else { continue };
            let v = rest.split(';').next().unwrap_or("");
            let v = if v.is_empty() { None } else { Some(v.to_owned()) };
            if name == "gatehouse_flow" {
                self.cookie = v;
            } else if let Some(v) = v {
                self.jar.insert(name.to_owned(), v);
            } else {
                self.jar.remove(name);
            }
        }
        let text = res.text().await.unwrap();
        let body =
            if text.is_empty() { Value::Null } else { serde_json::from_str(&text).unwrap_or(Value::String(text)) };
        Resp { status, headers, body }
    }

    pub async fn select(&mut self, flow: &str) -> Resp {
        self.post(&format!("/rest/public/self-service/flows/{flow}/select"), None).await
    }

    pub async fn identify(&mut self, username: &str) -> Resp {
        self.post("/rest/public/self-service/username/identify/", Some(serde_json::json!({ "username": username })))
            .await
    }

    pub async fn check_otp(&mut self, otp: &str) -> Resp {
        self.post("/rest/public/self-service/verification/email/otp/check/", Some(serde_json::json!({ "otp": otp })))
            .await
    }

    pub async fn resend(&mut self) -> Resp {
        self.post("/rest/public/self-service/verification/email/otp/resend/", None).await
    }

    pub async fn login(&mut self, username: &str, password: &str) -> Resp {
        self.post(
            "/rest/public/authentication/password/check/",
            Some(serde_json::json!({ "username": username, "password": password })),
        )
        .await
    }

    pub async fn set_password(&mut self, password: &str) -> Resp {
        self.post("/rest/public/self-service/password/set", Some(serde_json::json!({ "newPassword": password }))).await
    }
}

/// A mail as written to the file outbox (or received by an SMTP listener).
#[derive(Debug, Clone)]
pub struct Mail {
    pub to: String,
    pub subject: String,
    pub body: String,
    pub raw: String,
}

impl Mail {
    pub fn parse(raw: &str) -> Self {
        let (head, body) = raw.split_once("\r\n\r\n").or_else(|| raw.split_once("\n\n")).unwrap_or((raw, ""));
        let header = |name: &str| {
            head.lines().find_map(|l| l.strip_prefix(&format!("{name}: ")).map(str::to_owned)).unwrap_or_default()
        };
        let qp = head.to_lowercase().contains("content-transfer-encoding: quoted-printable");
        let body = if qp { decode_quoted_printable(body) } else { body.to_owned() };
        Self { to: header("To"), subject: header("Subject"), body, raw: raw.to_owned() }
    }

    /// The one-time code: the line that holds only the code.
    pub fn otp(&self) -> String {
        self.body
            .lines()
            .map(str::trim)
            .find(|l| {
                l.len() >= 4 && l.chars().all(|c| c.is_ascii_alphanumeric()) && l.chars().any(|c| c.is_ascii_digit())
            })
            .unwrap_or_else(|| panic!("no code in mail: {}", self.body))
            .to_owned()
    }
}

fn decode_quoted_printable(text: &str) -> String {
    let joined = text.replace("=\r\n", "").replace("=\n", "");
    let bytes = joined.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'='
            && i + 2 < bytes.len()
            && let Ok(b) = u8::from_str_radix(&joined[i + 1..i + 3], 16)
        {
            out.push(b);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Every mail in a directory of `.eml` files (the file outbox) or a Maildir's `new/`.
pub fn mails_in(dir: &Path) -> Vec<Mail> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return vec![];
    };
    let mut paths: Vec<PathBuf> = entries
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.is_file() && !p.file_name().is_some_and(|n| n.to_string_lossy().starts_with('.')))
        .collect();
    // Oldest first: a Maildir's names do not sort by time within a second (unpadded microseconds), so the
    // modification time decides, the name only breaks ties.
    paths.sort_by_key(|p| (std::fs::metadata(p).and_then(|m| m.modified()).ok(), p.clone()));
    paths.iter().map(|p| Mail::parse(&std::fs::read_to_string(p).unwrap())).collect()
}

/// Waits until `dir` holds at least `count` mails to `to`, and returns them in order.
pub async fn wait_for_mails(dir: &Path, to: &str, count: usize) -> Vec<Mail> {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let found: Vec<Mail> = mails_in(dir).into_iter().filter(|m| m.to.contains(to)).collect();
        if found.len() >= count {
            return found;
        }
        assert!(
            Instant::now() < deadline,
            "expected {count} mails to {to} in {}, found {}",
            dir.display(),
            found.len()
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

/// Starts a reset flow for `username` and returns the client and the OTP mailed to `email`.
pub async fn reset_until_otp(server: &TestServer, outbox: &Path, username: &str, email: &str) -> (Client, String) {
    let before = mails_in(outbox).into_iter().filter(|m| m.to.contains(email)).count();
    let mut c = server.client();
    c.select("password-reset").await.expect(200);
    let r = c.identify(username).await;
    r.expect(200);
    assert_eq!(r.next_step(), Some("EMAIL_OTP_REQUIRED"));
    let mails = wait_for_mails(outbox, email, before + 1).await;
    (c, mails[before].otp())
}

/// A test that panics with its PostgreSQL schema in use still leaves no schema behind.
#[tokio::test]
async fn a_test_that_panics_drops_its_schema() {
    let env = TestEnv::new(Backend::Postgres).await;
    env.store().await.ping().await.unwrap();
    let schema = env.schema.clone().unwrap();
    let pool = sqlx::PgPool::connect(&env.db_url).await.unwrap();
    let exists = async || -> i64 {
        sqlx::query_scalar("SELECT count(*) FROM information_schema.schemata WHERE schema_name = $1")
            .bind(&schema)
            .fetch_one(&pool)
            .await
            .unwrap()
    };
    assert_eq!(exists().await, 1, "the store made its schema");
    let failed = tokio::spawn(async move {
        let _env = env;
        panic!("a failing test");
    })
    .await;
    assert!(failed.is_err_and(|e| e.is_panic()));
    assert_eq!(exists().await, 0, "the schema went with the failed test");
    pool.close().await;
}
