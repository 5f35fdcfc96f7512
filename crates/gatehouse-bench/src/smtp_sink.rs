//! `--smtp`: a local aiosmtpd that stores every mail it receives in a Maildir, as the integration tests use
//! (`crates/gatehouse-cli/tests/it/smtp.rs`), and the server configuration that delivers to it. The bench's sink
//! stores mails with a handler of its own (`smtp_sink.py`): aiosmtpd's `Mailbox` handler parses and fsyncs every
//! mail on aiosmtpd's one thread, which made the sink, not the server, the pace of delivery. It runs aiosmtpd's
//! protocol in several processes on one port (`--smtp-processes`), as a mail server takes mail in several.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use tokio::process::{Child, Command};

use crate::server;

/// The aiosmtpd version the reports name (and the one to install).
pub const AIOSMTPD: &str = "aiosmtpd==1.4.6";

/// The handler and the launcher that serves it, written beside the Maildir and run with `python3`.
const HANDLER: &str = include_str!("smtp_sink.py");
/// The module name it is written under (`DIR/gatehouse_bench_sink.py`) and its handler class.
const HANDLER_MODULE: &str = "gatehouse_bench_sink";
pub const HANDLER_CLASS: &str = "gatehouse_bench_sink.RawMaildir";

/// A running `python3 DIR/gatehouse_bench_sink.py 127.0.0.1:PORT PROCESSES DIR/maildir`; killed when dropped
/// (its other processes die with it).
pub struct SmtpSink {
    child: Child,
    /// The first process's id, then its children's (one per further process).
    pub pids: Vec<u32>,
    pub port: u16,
    maildir: PathBuf,
}

impl SmtpSink {
    /// Starts the sink on a free port with a Maildir at `dir/maildir` (which must not exist yet) and waits until
    /// it accepts connections.
    pub async fn start(dir: &Path, processes: usize) -> anyhow::Result<Self> {
        let probe = Command::new("python3").args(["-c", "import aiosmtpd"]).stderr(Stdio::null()).status().await;
        if !probe.is_ok_and(|s| s.success()) {
            bail!("--smtp needs python3 with aiosmtpd: pip install {AIOSMTPD}");
        }
        let maildir = dir.join("maildir");
        if maildir.exists() {
            bail!("{} exists already; the sink's handler creates it", maildir.display());
        }
        let script = dir.join(format!("{HANDLER_MODULE}.py"));
        std::fs::write(&script, HANDLER)?;
        let port = server::free_port()?;
        let log = std::fs::File::create(dir.join("aiosmtpd.log"))?;
        let mut child = Command::new("python3")
            .arg(&script)
            .arg(format!("127.0.0.1:{port}"))
            .arg(processes.to_string())
            .arg(&maildir)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .kill_on_drop(true)
            .spawn()
            .context("cannot start the aiosmtpd sink")?;
        let pid = child.id().context("aiosmtpd exited at once")?;
        let deadline = Instant::now() + Duration::from_secs(15);
        // Every socket listens before the first process forks the others, so wait for those too.
        let mut pids = vec![pid];
        while tokio::net::TcpStream::connect(("127.0.0.1", port)).await.is_err() || pids.len() < processes {
            if let Some(status) = child.try_wait()? {
                bail!("aiosmtpd exited ({status}); see {}", dir.join("aiosmtpd.log").display());
            }
            if Instant::now() > deadline {
                bail!("aiosmtpd did not listen on port {port} within 15 s");
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
            pids = std::iter::once(pid).chain(children(pid)).collect();
        }
        Ok(Self { child, pids, port, maildir })
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

/// The children of `pid` (Linux's `/proc/PID/task/PID/children`); none if it cannot be read.
fn children(pid: u32) -> Vec<u32> {
    std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children"))
        .unwrap_or_default()
        .split_whitespace()
        .filter_map(|p| p.parse().ok())
        .collect()
}

/// Rewrites the configuration `write_config` made so that the server delivers to the sink on `port` over plain
/// SMTP (`tls = "none"` is allowed towards a loopback host only).
pub fn deliver_to(config: &Path, port: u16) -> anyhow::Result<()> {
    let file = "[messaging]\ntransport = \"file\"\n";
    let text = std::fs::read_to_string(config)?;
    if !text.contains(file) {
        bail!("the generated configuration {} has no file-transport [messaging] section to replace", config.display());
    }
    let smtp = format!(
        "[messaging]\ntransport = \"smtp\"\n\n\
         [messaging.smtp]\nhost = \"127.0.0.1\"\nport = {port}\ntls = \"none\"\ntimeout_seconds = 10\n"
    );
    std::fs::write(config, text.replacen(file, &smtp, 1))?;
    Ok(())
}
