//! `--smtp`: a local aiosmtpd that stores every mail it receives in a Maildir, as the integration tests use
//! (`crates/gatehouse-cli/tests/it/smtp.rs`), and the server configuration that delivers to it. The bench's sink
//! stores mails with a handler of its own (`smtp_sink.py`): aiosmtpd's `Mailbox` handler parses and fsyncs every
//! mail on aiosmtpd's one thread, which made the sink, not the server, the pace of delivery.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use tokio::process::{Child, Command};

use crate::server;

/// The aiosmtpd version the reports name (and the one to install).
pub const AIOSMTPD: &str = "aiosmtpd==1.4.6";

/// The handler, written beside the Maildir and imported by aiosmtpd from there.
const HANDLER: &str = include_str!("smtp_sink.py");
/// The module name it is written under (`DIR/gatehouse_bench_sink.py`) and the class aiosmtpd's `-c` names.
const HANDLER_MODULE: &str = "gatehouse_bench_sink";
pub const HANDLER_CLASS: &str = "gatehouse_bench_sink.RawMaildir";

/// A running `python3 -m aiosmtpd … -c gatehouse_bench_sink.RawMaildir DIR`; killed when dropped.
pub struct SmtpSink {
    child: Child,
    pub pid: u32,
    pub port: u16,
    maildir: PathBuf,
}

impl SmtpSink {
    /// Starts the sink on a free port with a Maildir at `dir/maildir` (which must not exist yet) and waits until
    /// it accepts connections.
    pub async fn start(dir: &Path) -> anyhow::Result<Self> {
        let probe = Command::new("python3").args(["-c", "import aiosmtpd"]).stderr(Stdio::null()).status().await;
        if !probe.is_ok_and(|s| s.success()) {
            bail!("--smtp needs python3 with aiosmtpd: pip install {AIOSMTPD}");
        }
        let maildir = dir.join("maildir");
        if maildir.exists() {
            bail!("{} exists already; the sink's handler creates it", maildir.display());
        }
        std::fs::write(dir.join(format!("{HANDLER_MODULE}.py")), HANDLER)?;
        let port = server::free_port()?;
        let log = std::fs::File::create(dir.join("aiosmtpd.log"))?;
        let mut child = Command::new("python3")
            .args(["-m", "aiosmtpd", "-n", "-l", &format!("127.0.0.1:{port}"), "-c", HANDLER_CLASS])
            .arg(&maildir)
            .env("PYTHONPATH", dir)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .kill_on_drop(true)
            .spawn()
            .context("cannot start python3 -m aiosmtpd")?;
        let pid = child.id().context("aiosmtpd exited at once")?;
        let deadline = Instant::now() + Duration::from_secs(15);
        while tokio::net::TcpStream::connect(("127.0.0.1", port)).await.is_err() {
            if let Some(status) = child.try_wait()? {
                bail!("aiosmtpd exited ({status}); see {}", dir.join("aiosmtpd.log").display());
            }
            if Instant::now() > deadline {
                bail!("aiosmtpd did not listen on port {port} within 15 s");
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Ok(Self { child, pid, port, maildir })
    }

    /// Where complete mails appear.
    pub fn inbox(&self) -> PathBuf {
        self.maildir.join("new")
    }

    /// Kills the sink and waits for it.
    pub async fn stop(mut self) {
        let _ = self.child.kill().await;
    }
}

/// Rewrites the configuration `write_config` made so that the server delivers to the sink on `port` over plain
/// SMTP (`tls = "none"` is allowed towards a loopback host only).
pub fn deliver_to(config: &Path, port: u16) -> anyhow::Result<()> {
    let file = "[messaging]\ntransport = \"file\"\npoll_interval_ms = 20\n";
    let text = std::fs::read_to_string(config)?;
    if !text.contains(file) {
        bail!("the generated configuration {} has no file-transport [messaging] section to replace", config.display());
    }
    let smtp = format!(
        "[messaging]\ntransport = \"smtp\"\npoll_interval_ms = 20\n\n\
         [messaging.smtp]\nhost = \"127.0.0.1\"\nport = {port}\ntls = \"none\"\ntimeout_seconds = 10\n"
    );
    std::fs::write(config, text.replacen(file, &smtp, 1))?;
    Ok(())
}
