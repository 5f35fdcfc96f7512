//! The `gatehouse` binary as an operator uses it.

use std::io::Write as _;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use gatehouse_core::crypto::{HashParams, Passwords};

use crate::harness::{Backend, Client, TestEnv, wait_for_mails};
use crate::on_both_backends;

on_both_backends!(user_commands_manage_users, config_show_and_doctor, migrate_says_what_it_applies);

const BIN: &str = env!("CARGO_BIN_EXE_gatehouse");

/// Runs `gatehouse ARGS` against the environment's database, with `stdin` as input.
pub(crate) fn gatehouse(env: &TestEnv, args: &[&str], stdin: Option<&str>) -> Output {
    gatehouse_with(env, args, stdin, &[])
}

/// [`gatehouse`] with more environment variables.
fn gatehouse_with(env: &TestEnv, args: &[&str], stdin: Option<&str>, vars: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(BIN);
    cmd.envs(vars.iter().copied());
    cmd.args(args)
        .env_remove("GATEHOUSE_CONFIG")
        .env("NO_COLOR", "1")
        .env("GATEHOUSE_DATABASE_URL", &env.db_url)
        .env("GATEHOUSE_DATA_DIR", env.dir.path());
    if let Some(schema) = &env.schema {
        cmd.env("GATEHOUSE_STORAGE__SCHEMA", schema);
    }
    let mut child = cmd.stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    let mut input = child.stdin.take().unwrap();
    if let Some(text) = stdin {
        input.write_all(text.as_bytes()).unwrap();
    }
    drop(input);
    child.wait_with_output().unwrap()
}

#[track_caller]
pub(crate) fn ok(out: &Output) -> String {
    assert!(
        out.status.success(),
        "failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[track_caller]
fn fails(out: &Output) -> String {
    assert!(!out.status.success(), "unexpected success: {}", String::from_utf8_lossy(&out.stdout));
    String::from_utf8_lossy(&out.stderr).into_owned()
}

async fn user_commands_manage_users(backend: Backend) {
    let env = TestEnv::new(backend).await;
    ok(&gatehouse(
        &env,
        &[
            "user",
            "add",
            "jdoe",
            "--email",
            "jdoe@example.com",
            "--phone",
            "+41 79 123 45 67",
            "--alias",
            "j.doe@example.com",
            "--role",
            "helpdesk",
            "--password-stdin",
        ],
        Some("Old-Cobalt-Lantern-1\n"),
    ));
    assert!(fails(&gatehouse(&env, &["user", "add", "jdoe"], None)).contains("taken"));
    assert!(fails(&gatehouse(&env, &["user", "add", "other", "--alias", "jdoe"], None)).contains("taken"));
    assert!(
        fails(&gatehouse(&env, &["user", "add", "weak", "--password-stdin"], Some("password\n")))
            .contains("TOO_GUESSABLE")
    );
    assert!(fails(&gatehouse(&env, &["user", "add", "bad mail", "--email", "nope"], None)).contains("username"));
    assert!(fails(&gatehouse(&env, &["user", "add", "mailless", "--email", "nope"], None)).contains("email"));

    // Global options work before and after the subcommand.
    let shown: serde_json::Value =
        serde_json::from_str(&ok(&gatehouse(&env, &["user", "show", "J.Doe@example.com", "--json"], None))).unwrap();
    let before: serde_json::Value =
        serde_json::from_str(&ok(&gatehouse(&env, &["--log-format", "json", "user", "show", "jdoe", "--json"], None)))
            .unwrap();
    assert_eq!(before["id"], shown["id"]);
    assert_eq!(shown["username"], "jdoe");
    // The demo sets `users.email_as_alias`: the email is a login name too.
    assert_eq!(shown["aliases"], serde_json::json!(["j.doe@example.com", "jdoe@example.com"]));
    assert_eq!(shown["roles"], serde_json::json!(["helpdesk"]));
    assert_eq!(shown["context"]["phone"], "+41791234567");
    assert_eq!((shown["locked"].as_bool(), shown["has_password"].as_bool()), (Some(false), Some(true)));
    let text = serde_json::to_string(&shown).unwrap();
    assert!(!text.contains("argon2") && !text.contains("password_hash"), "no secret in show: {text}");

    ok(&gatehouse(&env, &["user", "lock", "jdoe", "--reason", "LockReason.FraudReportedByUser"], None));
    let store = env.store().await;
    let id = env.user("jdoe").await.id;
    let lockout = gatehouse_core::config::LockoutConfig::default();
    store.record_failure(&id, &lockout.counter("PASSWORD", false), 1).await.unwrap();
    store.record_failure(&id, &lockout.counter("EMAIL_OTP", false), 1).await.unwrap();
    let text = ok(&gatehouse(&env, &["user", "show", "jdoe"], None));
    assert!(text.contains("yes, LockReason.FraudReportedByUser"), "{text}");
    assert!(text.contains("EMAIL_OTP=1, PASSWORD=1"), "{text}");
    ok(&gatehouse(&env, &["user", "unlock", "jdoe"], None));
    let user = env.user("jdoe").await;
    assert!(!user.locked && user.failed_attempts.is_empty(), "unlock resets every counter");

    assert!(
        fails(&gatehouse(&env, &["user", "set-password", "jdoe", "--password-stdin"], Some("short\n")))
            .contains("TOO_SHORT")
    );
    ok(&gatehouse(&env, &["user", "set-password", "jdoe", "--password-stdin"], Some("Quiet-Harbor-Gull-58\n")));
    let hasher = Passwords::new(HashParams { memory_kib: 19456, iterations: 2, parallelism: 1 }).unwrap();
    assert!(
        hasher
            .verify("Quiet-Harbor-Gull-58", env.user("jdoe").await.password_hash.as_deref().unwrap())
            .unwrap()
            .matches
    );

    // Imported hashes are accepted when they could ever verify.
    let bcrypt = bcrypt::hash("Imported-Pass-1", 4).unwrap();
    ok(&gatehouse(&env, &["user", "add", "imported", "--password-hash", &bcrypt], None));
    let verification =
        hasher.verify("Imported-Pass-1", env.user("imported").await.password_hash.as_deref().unwrap()).unwrap();
    assert!(verification.matches && verification.needs_rehash, "{verification:?}");
    assert!(
        fails(&gatehouse(&env, &["user", "add", "garbage", "--password-hash", "plaintext"], None))
            .contains("password-hash")
    );

    let list: serde_json::Value =
        serde_json::from_str(&ok(&gatehouse(&env, &["user", "list", "--json"], None))).unwrap();
    let names: Vec<&str> = list.as_array().unwrap().iter().map(|u| u["username"].as_str().unwrap()).collect();
    assert_eq!(names, vec!["imported", "jdoe"]);

    ok(&gatehouse(&env, &["user", "delete", "jdoe"], None));
    assert!(fails(&gatehouse(&env, &["user", "show", "jdoe"], None)).contains("no user"));

    // Every admin action left an audit event.
    let events: Vec<String> = store.list_audit(100).await.unwrap().into_iter().map(|e| e.event).collect();
    for e in ["user.created", "user.locked", "user.unlocked", "password.changed", "user.deleted"] {
        assert!(events.iter().any(|x| x == e), "missing {e}: {events:?}");
    }
    env.cleanup().await;
}

#[test]
fn config_check_reports_the_key_path() {
    let dir = tempfile::tempdir().unwrap();
    let run = |args: &[&str]| {
        Command::new(BIN).args(args).env_remove("GATEHOUSE_CONFIG").current_dir(dir.path()).output().unwrap()
    };
    let out = run(&["config", "check"]);
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains("built-in demo config: valid"));

    let demo = String::from_utf8(run(&["config", "demo"]).stdout).unwrap();
    let write = |name: &str, text: &str| {
        let p = dir.path().join(name);
        std::fs::write(&p, text).unwrap();
        p.display().to_string()
    };
    let good = write("good.toml", &demo);
    assert!(run(&["config", "check", &good]).status.success());

    let unknown = write(
        "unknown.toml",
        &demo.replace("trust_forwarded_proto = false", "trust_forwarded_proto = false\ncolour = \"blue\""),
    );
    let out = run(&["config", "check", &unknown]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("colour") && err.contains("server"), "{err}");

    let short = write("short.toml", &demo.replace("length = 8", "length = 2"));
    let err = String::from_utf8_lossy(&run(&["config", "check", &short]).stderr).into_owned();
    assert!(err.contains("public_self_service.flows[0].steps[1].otp.length"), "{err}");

    let wrong_type = write("type.toml", &demo.replace("max_body_bytes = 65536", "max_body_bytes = \"big\""));
    let err = String::from_utf8_lossy(&run(&["config", "check", &wrong_type]).stderr).into_owned();
    assert!(err.contains("max_body_bytes"), "{err}");

    let loud = write("loud.toml", &demo.replace("locked_user_feedback = false", "locked_user_feedback = true"));
    let out = run(&["config", "check", &loud]);
    assert!(out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stdout)
            .contains("warning: public_self_service.flows[0].restrictions.locked_user_feedback")
    );

    // A step in a flow kind that does not allow it.
    let misplaced = write(
        "misplaced.toml",
        &demo.replacen(
            "[[public_self_service.flows.steps]]\ntype = \"user-identification\"",
            "[[public_self_service.flows.steps]]\ntype = \"password\"",
            1,
        ),
    );
    let err = String::from_utf8_lossy(&run(&["config", "check", &misplaced]).stderr).into_owned();
    assert!(err.contains("`password` step cannot be used in a public_self_service flow"), "{err}");

    // Every template is rendered once: an override using a variable its message lacks is reported.
    std::fs::create_dir_all(dir.path().join("templates")).unwrap();
    write("templates/email-otp.de.txt", "Subject: Code\n\nHallo {{ username }}, {{ kode }}\n");
    let overridden = write(
        "templates.toml",
        &demo.replace(
            "# templates_dir = \"./templates\"",
            &format!("templates_dir = \"{}\"", dir.path().join("templates").display()),
        ),
    );
    let out = run(&["config", "check", &overridden]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("email-otp.de") && err.contains("kode"), "{err}");

    // The same validation stops the server from starting.
    let out = run(&["serve", "--config", &short]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("otp.length"));
}

struct ServerProcess(std::process::Child);

impl Drop for ServerProcess {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The README's first command: `gatehouse serve` with nothing configured, then the tour with `user add`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_runs_on_embedded_defaults() {
    let dir = tempfile::tempdir().unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let log = dir.path().join("serve.log");
    // Started with a soft limit of open files far below the hard one, as many systems start services.
    let child = Command::new("sh")
        .args(["-c", "ulimit -Sn 256 && exec \"$0\" \"$@\"", BIN, "serve", "--bind", &format!("127.0.0.1:{port}")])
        .env_remove("GATEHOUSE_CONFIG")
        .env_remove("GATEHOUSE_DATABASE_URL")
        .env_remove("GATEHOUSE_DATA_DIR")
        .current_dir(dir.path())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    let mut server = ServerProcess(child);
    let base = format!("http://127.0.0.1:{port}");
    gatehouse_server::install_crypto_provider();
    let http = reqwest::Client::new();
    let deadline = Instant::now() + Duration::from_secs(20);
    while http.get(format!("{base}/health/ready")).send().await.map(|r| r.status().as_u16()).unwrap_or(0) != 200 {
        assert!(
            Instant::now() < deadline,
            "server did not start: {}",
            std::fs::read_to_string(&log).unwrap_or_default()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let started = std::fs::read_to_string(&log).unwrap();
    assert!(started.contains(&format!("listening on http://127.0.0.1:{port}")), "{started}");
    assert!(started.contains("database sqlite://./gatehouse-data/gatehouse.db"), "{started}");
    assert!(started.contains("file outbox ./gatehouse-data/outbox"), "{started}");
    // The server raised its soft limit of open files to the hard one (one per waiting long poll).
    let limits = std::fs::read_to_string(format!("/proc/{}/limits", server.0.id())).unwrap();
    let open_files: Vec<&str> =
        limits.lines().find(|l| l.starts_with("Max open files")).unwrap().split_whitespace().collect();
    assert_eq!(open_files[3], open_files[4], "{limits}");
    assert_ne!(open_files[3], "256", "{limits}");
    assert!(started.contains("open files allowed"), "{started}");

    // While the server runs, the CLI adds a user in the same database.
    let add = Command::new(BIN)
        .args(["user", "add", "jdoe", "--email", "jdoe@example.com", "--password-stdin"])
        .env_remove("GATEHOUSE_CONFIG")
        .current_dir(dir.path())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut add = add;
    add.stdin.take().unwrap().write_all(b"Old-Cobalt-Lantern-1\n").unwrap();
    assert!(add.wait_with_output().unwrap().status.success());

    let mut c = Client::new(&base);
    c.select("password-reset").await.expect(200);
    c.identify("jdoe").await.expect(200);
    let outbox = dir.path().join("gatehouse-data/outbox");
    let mails = wait_for_mails(&outbox, "jdoe@example.com", 1).await;
    c.check_otp(&mails[0].otp()).await.expect(200);
    c.set_password("Fresh-Marble-Otter-42").await.expect(200);
    assert!(Path::new(&dir.path().join("gatehouse-data/secret.key")).exists());

    // SIGTERM: a graceful stop with exit status 0.
    let pid = server.0.id().to_string();
    assert!(Command::new("kill").args(["-TERM", &pid]).status().unwrap().success());
    let deadline = Instant::now() + Duration::from_secs(20);
    let status = loop {
        if let Some(s) = server.0.try_wait().unwrap() {
            break s;
        }
        assert!(Instant::now() < deadline, "no graceful stop");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(status.success(), "{status:?}");
    assert!(std::fs::read_to_string(&log).unwrap().contains("shutting down"));
}

/// `config show` tells where each value came from and masks secrets; `doctor` checks a node against the
/// database a server used, and fails on a key the other nodes do not share.
async fn config_show_and_doctor(backend: Backend) {
    let env = TestEnv::new(backend).await;
    let with_env = |args: &[&str], vars: &[(&str, &str)]| {
        let mut cmd = Command::new(BIN);
        cmd.args(args)
            .env_remove("GATEHOUSE_CONFIG")
            .env("GATEHOUSE_DATABASE_URL", &env.db_url)
            .env("GATEHOUSE_DATA_DIR", env.dir.path());
        if let Some(schema) = &env.schema {
            cmd.env("GATEHOUSE_STORAGE__SCHEMA", schema);
        }
        for (k, v) in vars {
            cmd.env(k, v);
        }
        cmd.output().unwrap()
    };
    let shown = ok(&with_env(
        &["config", "show"],
        &[("GATEHOUSE_SERVER__SECRET_KEY", &env.key), ("GATEHOUSE_LOCKOUT__MAX_FAILED_ATTEMPTS", "4")],
    ));
    assert!(!shown.contains(&env.key), "the key is masked");
    assert!(shown.contains("server.secret_key = \"***\"  # env GATEHOUSE_SERVER__SECRET_KEY"), "{shown}");
    assert!(shown.contains("lockout.max_failed_attempts = 4  # env GATEHOUSE_LOCKOUT__MAX_FAILED_ATTEMPTS"), "{shown}");
    assert!(shown.contains("lockout.public_flow_failures = \"throttle\"  # built-in demo config"), "{shown}");
    assert!(shown.contains("hashing.workers = 0  # built-in demo config"), "{shown}");
    assert!(shown.contains("storage.lock_wait_ms = 5000  # default"), "{shown}");
    assert!(shown.contains("--database-url or GATEHOUSE_DATABASE_URL"), "{shown}");
    let with_password =
        with_env(&["config", "show", "--database-url", "postgres://gh:pa55word@db.example:5432/gh"], &[]);
    let text = ok(&with_password);
    assert!(text.contains("postgres://gh:***@db.example:5432/gh") && !text.contains("pa55word"), "{text}");

    // A server used the database: migrations applied, its key recorded.
    let server = env.start(env.config()).await;
    server.stop().await;
    let out = with_env(&["doctor"], &[("GATEHOUSE_SERVER__SECRET_KEY", &env.key)]);
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(out.status.success(), "{text}{}", String::from_utf8_lossy(&out.stderr));
    for line in [
        "ok    database:",
        "ok    migrations: all",
        "ok    key: server.secret_key, the same",
        "ok    clock:",
        "ok    delivery:",
    ] {
        assert!(text.contains(line), "{line} missing:\n{text}");
    }
    // The SQLite library's build flags matter only where SQLite is the database.
    match backend {
        Backend::Sqlite => assert!(text.contains("ok    sqlite build: a page cache per connection"), "{text}"),
        Backend::Postgres => assert!(!text.contains("sqlite build"), "{text}"),
    }
    // Another key: the node would not open the others' sealed data.
    let other = gatehouse_core::crypto::ServerKey::generate_base64(&gatehouse_core::random::SystemRandom);
    let out = with_env(&["doctor"], &[("GATEHOUSE_SERVER__SECRET_KEY", &other)]);
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(!out.status.success(), "{text}");
    assert!(text.contains("FAIL  key:"), "{text}");
    // A database that is not there.
    let out = with_env(&["doctor", "--database-url", "postgres://nobody@127.0.0.1:1/none"], &[]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains("FAIL  database:"));
    env.cleanup().await;
}

/// `gatehouse migrate` names each migration before it starts and times it after (one may take minutes on a large
/// database), and says nothing of the kind when there is nothing to do.
async fn migrate_says_what_it_applies(backend: Backend) {
    let env = TestEnv::new(backend).await;
    // With sqlx's statement log on: a migration is announced and timed once, never also logged statement by
    // statement (on a large database sqlx's slow-statement warning printed a migration's whole text).
    let out = gatehouse_with(
        &env,
        &["migrate"],
        None,
        &[("GATEHOUSE_LOG", "info,sqlx::postgres::notice=warn,sqlx::query=debug")],
    );
    assert!(ok(&out).contains("is up to date"));
    let log = String::from_utf8_lossy(&out.stderr).into_owned();
    let applying = log.lines().filter(|l| l.contains("applying migration")).count();
    let applied = log.lines().filter(|l| l.contains("migration applied") && l.contains("seconds=")).count();
    assert!(applying >= 16 && applied == applying, "{log}");
    assert!(!log.contains("CREATE TABLE"), "the migrations' statements are not logged: {log}");
    assert!(!log.contains("already exists"), "PostgreSQL's notices stay out of the log: {log}");
    assert!(log.contains("version=1 name=init"), "{log}");
    let again = gatehouse(&env, &["migrate"], None);
    assert!(ok(&again).contains("is up to date"));
    let log = String::from_utf8_lossy(&again.stderr).into_owned();
    assert!(!log.contains("migration"), "{log}");
    assert!(!log.contains("already exists"), "PostgreSQL's notices stay out of the log: {log}");
    env.cleanup().await;
}
