//! Mail through a real SMTP listener on loopback (aiosmtpd, an independent implementation), including an
//! outage: the flow answers at once, the mail waits in the outbox — across a restart — and arrives later.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use gatehouse_core::config::{Config, SmtpTls, Transport};

use crate::harness::{Backend, TestEnv, mails_in, wait_for_mails};
use crate::on_both_backends;

on_both_backends!(
    mail_reaches_a_real_smtp_listener,
    mail_waits_for_smtp_across_a_restart,
    a_connection_the_server_closed_while_idle_is_replaced_at_once
);

/// An aiosmtpd process storing what it receives in a Maildir; killed on drop.
struct SmtpListener {
    child: Child,
    maildir: PathBuf,
}

impl SmtpListener {
    async fn start(port: u16, dir: &Path) -> Self {
        Self::start_with(port, dir, &[]).await
    }

    /// `tls`: extra aiosmtpd options (`--tlscert`, `--tlskey` for STARTTLS).
    async fn start_with(port: u16, dir: &Path, tls: &[&str]) -> Self {
        let maildir = dir.join("maildir");
        let child = Command::new("python3")
            .args(["-m", "aiosmtpd", "-n", "-l", &format!("127.0.0.1:{port}")])
            .args(tls)
            .args(["-c", "aiosmtpd.handlers.Mailbox"])
            .arg(&maildir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("python3 with aiosmtpd is needed: pip install aiosmtpd");
        let deadline = Instant::now() + Duration::from_secs(15);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "aiosmtpd did not start on port {port} (pip install aiosmtpd)");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Self { child, maildir }
    }

    fn inbox(&self) -> PathBuf {
        self.maildir.join("new")
    }
}

impl Drop for SmtpListener {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

fn smtp_config(env: &TestEnv, port: u16) -> Config {
    let mut c = env.config();
    c.messaging.transport = Transport::Smtp;
    c.messaging.smtp.host = "127.0.0.1".into();
    c.messaging.smtp.port = port;
    c.messaging.smtp.tls = SmtpTls::None;
    c.messaging.smtp.timeout_seconds = 2;
    c.validate().unwrap();
    c
}

async fn mail_reaches_a_real_smtp_listener(backend: Backend) {
    let env = TestEnv::new(backend).await;
    let port = free_port();
    let listener = SmtpListener::start(port, env.dir.path()).await;
    let server = env.start(smtp_config(&env, port)).await;
    env.add_user("wen", Some("wen@example.com"), Some("Old-Cobalt-Lantern-1")).await;

    let mut c = server.client();
    c.select("password-reset").await.expect(200);
    c.identify("wen").await.expect(200);
    let mails = wait_for_mails(&listener.inbox(), "wen@example.com", 1).await;
    assert_eq!(mails[0].subject, "Your password reset code");
    c.check_otp(&mails[0].otp()).await.expect(200);
    c.set_password("Fresh-Marble-Otter-42").await.expect(200);
    let mails = wait_for_mails(&listener.inbox(), "wen@example.com", 2).await;
    assert_eq!(mails[1].subject, "Your password was changed");
    assert!(mails_in(&env.outbox()).is_empty(), "SMTP transport writes no files");

    // Delivered messages keep no content in the database.
    let deadline = Instant::now() + Duration::from_secs(5);
    while env.store().await.pending_outbox().await.unwrap() > 0 {
        assert!(Instant::now() < deadline);
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    server.stop().await;
    env.cleanup().await;
}

async fn mail_waits_for_smtp_across_a_restart(backend: Backend) {
    let env = TestEnv::new(backend).await;
    let port = free_port();
    let first = env.start(smtp_config(&env, port)).await;
    env.add_user("xia", Some("xia@example.com"), Some("Old-Cobalt-Lantern-1")).await;

    // Nothing listens on the port: the identify call still answers at once.
    let mut c = first.client();
    c.select("password-reset").await.expect(200);
    let started = Instant::now();
    c.identify("xia").await.expect(200);
    assert!(started.elapsed() < Duration::from_secs(1), "identify waited for SMTP: {:?}", started.elapsed());
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(env.store().await.pending_outbox().await.unwrap(), 1, "the mail waits in the outbox");
    first.stop().await;

    // A new server process; then the SMTP server comes back.
    let second = env.start(smtp_config(&env, port)).await;
    let listener = SmtpListener::start(port, env.dir.path()).await;
    let mails = wait_for_mails(&listener.inbox(), "xia@example.com", 1).await;
    let mut c = c.on(&second);
    assert_eq!(c.check_otp(&mails[0].otp()).await.expect(200).next_step(), Some("NEW_PASSWORD_REQUIRED"));
    assert_eq!(mails.len(), 1, "delivered once");
    second.stop().await;
    env.cleanup().await;
}

/// Idle connections are reused without a probe; one the server closed in the meantime (here: the SMTP server
/// restarted) is noticed at `MAIL FROM` and the mail goes out at once on a new connection — not a minute later
/// through the outbox's retry.
async fn a_connection_the_server_closed_while_idle_is_replaced_at_once(backend: Backend) {
    let env = TestEnv::new(backend).await;
    let port = free_port();
    let listener = SmtpListener::start(port, env.dir.path()).await;
    let mut config = smtp_config(&env, port);
    config.messaging.retry_initial_delay_ms = 60_000;
    config.messaging.retry_max_delay_ms = 60_000;
    let server = env.start(config).await;
    env.add_user("ana", Some("ana@example.com"), Some("Old-Cobalt-Lantern-1")).await;
    env.add_user("ben", Some("ben@example.com"), Some("Old-Cobalt-Lantern-1")).await;

    let mut c = server.client();
    c.select("password-reset").await.expect(200);
    c.identify("ana").await.expect(200);
    wait_for_mails(&listener.inbox(), "ana@example.com", 1).await;
    drop(listener);
    let listener = SmtpListener::start(port, env.dir.path()).await;

    let mut c = server.client();
    c.select("password-reset").await.expect(200);
    let started = Instant::now();
    c.identify("ben").await.expect(200);
    let mails = wait_for_mails(&listener.inbox(), "ben@example.com", 1).await;
    assert!(started.elapsed() < Duration::from_secs(10), "waited for a retry: {:?}", started.elapsed());
    assert_eq!(mails.len(), 1, "delivered once");
    assert_eq!(mails_in(&listener.inbox()).len(), 2, "nothing else arrived");
    server.stop().await;
    env.cleanup().await;
}

/// A company CA and a server certificate for `localhost` signed by it (openssl).
fn company_ca(dir: &Path) -> (PathBuf, PathBuf, PathBuf) {
    let script = r#"
set -e
openssl req -x509 -newkey rsa:2048 -nodes -keyout ca.key -out ca.pem -days 2 -subj "/CN=Gatehouse Test CA" \
  -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign" 2>/dev/null
openssl req -newkey rsa:2048 -nodes -keyout server.key -out server.csr -subj "/CN=localhost" 2>/dev/null
printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n' > ext.cnf
openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial -out server.pem -days 2 -extfile ext.cnf 2>/dev/null
"#;
    let out = Command::new("bash").arg("-c").arg(script).current_dir(dir).output().expect("openssl is needed");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    (dir.join("ca.pem"), dir.join("server.pem"), dir.join("server.key"))
}

/// STARTTLS towards a server whose certificate a company CA signed: refused without `ca_file`, delivered with it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn starttls_with_a_company_ca() {
    let env = TestEnv::new(Backend::Sqlite).await;
    let (ca, cert, key) = company_ca(env.dir.path());
    let port = free_port();
    let listener = SmtpListener::start_with(
        port,
        env.dir.path(),
        &["--tlscert", &cert.display().to_string(), "--tlskey", &key.display().to_string()],
    )
    .await;
    let mut config = smtp_config(&env, port);
    config.messaging.smtp.host = "localhost".into();
    config.messaging.smtp.tls = SmtpTls::Starttls;
    config.messaging.smtp.ca_file = Some(ca);
    config.validate().unwrap();
    let server = env.start(config).await;
    env.add_user("yan", Some("yan@example.com"), Some("Old-Cobalt-Lantern-1")).await;
    let mut c = server.client();
    c.select("password-reset").await.expect(200);
    c.identify("yan").await.expect(200);
    let mails = wait_for_mails(&listener.inbox(), "yan@example.com", 1).await;
    assert_eq!(mails[0].subject, "Your password reset code");
    server.stop().await;

    // Without the CA the certificate is not trusted: nothing is delivered, the mail stays queued.
    let mut untrusting = smtp_config(&env, port);
    untrusting.messaging.smtp.host = "localhost".into();
    untrusting.messaging.smtp.tls = SmtpTls::Starttls;
    let server = env.start(untrusting).await;
    let mut c = server.client();
    c.select("password-reset").await.expect(200);
    c.identify("yan").await.expect(200);
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert_eq!(mails_in(&listener.inbox()).len(), 1, "an untrusted certificate gets no mail");
    assert_eq!(env.store().await.pending_outbox().await.unwrap(), 1);
    server.stop().await;
}

/// Established TCP connections towards `port` on loopback, from the client's side (`/proc/net/tcp`: the remote
/// address's port in hex, state `01`).
fn connections_to(port: u16) -> usize {
    let remote = format!(":{port:04X}");
    ["/proc/net/tcp", "/proc/net/tcp6"]
        .iter()
        .filter_map(|table| std::fs::read_to_string(table).ok())
        .flat_map(|text| text.lines().skip(1).map(str::to_owned).collect::<Vec<_>>())
        .filter(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            fields.get(2).is_some_and(|rem| rem.ends_with(&remote)) && fields.get(3) == Some(&"01")
        })
        .count()
}

/// A connection kept for the next mail is closed once it has been idle for `keep_idle_seconds`, though no other
/// mail comes: the worker's idle round closes it, rather than the next delivery finding it stale (a server that
/// hung up first would leave the socket half-closed until then).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idle_smtp_connection_is_closed_after_its_keep_time() {
    let env = TestEnv::new(Backend::Sqlite).await;
    let port = free_port();
    let listener = SmtpListener::start(port, env.dir.path()).await;
    let mut config = smtp_config(&env, port);
    config.messaging.smtp.keep_idle_seconds = 2;
    config.messaging.poll_interval_ms = 100;
    let server = env.start(config).await;
    env.add_user("ada", Some("ada@example.com"), Some("Old-Cobalt-Lantern-1")).await;

    let mut c = server.client();
    c.select("password-reset").await.expect(200);
    c.identify("ada").await.expect(200);
    wait_for_mails(&listener.inbox(), "ada@example.com", 1).await;
    let delivered = Instant::now();
    assert_eq!(connections_to(port), 1, "the connection is kept for the next mail");
    let deadline = delivered + Duration::from_secs(10);
    while connections_to(port) > 0 {
        assert!(Instant::now() < deadline, "the idle connection was not closed");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        delivered.elapsed() >= Duration::from_millis(1500),
        "closed before its keep time: {:?}",
        delivered.elapsed()
    );
    server.stop().await;
    env.cleanup().await;
}
