//! Mail through a real SMTP listener on loopback (aiosmtpd, an independent implementation), including an
//! outage: the flow answers at once, the mail waits in the outbox — across a restart — and arrives later.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use gatehouse_core::config::{Config, SmtpTls, Transport};

use crate::harness::{Backend, TestEnv, mails_in, wait_for_mails};
use crate::on_both_backends;

on_both_backends!(mail_reaches_a_real_smtp_listener, mail_waits_for_smtp_across_a_restart);

/// An aiosmtpd process storing what it receives in a Maildir; killed on drop.
struct SmtpListener {
    child: Child,
    maildir: PathBuf,
}

impl SmtpListener {
    async fn start(port: u16, dir: &Path) -> Self {
        let maildir = dir.join("maildir");
        let child = Command::new("python3")
            .args(["-m", "aiosmtpd", "-n", "-l", &format!("127.0.0.1:{port}"), "-c", "aiosmtpd.handlers.Mailbox"])
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
