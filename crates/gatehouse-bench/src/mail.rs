//! Watches the file outbox (or the Maildir an SMTP sink writes) and hands each OTP mail to the flow waiting
//! for it.
//!
//! One task scans the directory for new `.eml` files (so that 16 clients do not each re-read hundreds
//! of files); a flow registers its address before it calls identify and gets the code through a channel.
//! Several watchers (one per directory) may feed the same [`Outbox`].

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant, SystemTime};

use tokio::sync::{oneshot, watch};

/// How far a file's modification time may lag behind the system clock (a kernel tick is 1–10 ms).
const COARSE_CLOCK_SLACK_MS: i64 = 20;

/// How often the watcher lists the outbox directory.
pub const SCAN_INTERVAL: Duration = Duration::from_millis(10);

/// An OTP mail as the watcher found it.
#[derive(Debug)]
pub struct OtpMail {
    pub otp: String,
    /// When the server wrote the file (its modification time).
    pub written: SystemTime,
}

/// How the watched directory names its files.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layout {
    /// The server's file outbox: `CREATED_AT_MS-ID.eml`, written as `.NAME.tmp` and renamed.
    FileOutbox,
    /// A Maildir's `new/` directory (the bench's SMTP sink): no creation time in the name, so the
    /// file's modification time stands for it.
    Maildir,
}

struct Waiter {
    /// Only mails the server created at or after this time (ms since the epoch) count.
    not_before_ms: i64,
    tx: oneshot::Sender<OtpMail>,
}

#[derive(Default)]
pub struct Outbox {
    waiters: Mutex<HashMap<String, Waiter>>,
    /// Mails without a code (the password-changed notification).
    pub notifications: AtomicU64,
    /// Codes nobody waited for (should stay 0).
    pub unclaimed_codes: AtomicU64,
}

impl Outbox {
    /// Asks for the next OTP mail to `address` created at or after `not_before_ms`.
    pub fn expect(&self, address: &str, not_before_ms: i64) -> oneshot::Receiver<OtpMail> {
        let (tx, rx) = oneshot::channel();
        let mut waiters = self.waiters.lock().unwrap_or_else(PoisonError::into_inner);
        waiters.insert(address.to_ascii_lowercase(), Waiter { not_before_ms, tx });
        rx
    }

    /// Whether a mail to `address` is still awaited.
    pub fn is_waiting(&self, address: &str) -> bool {
        self.waiters.lock().unwrap_or_else(PoisonError::into_inner).contains_key(&address.to_ascii_lowercase())
    }

    /// Withdraws a request (the flow failed or gave up).
    pub fn forget(&self, address: &str) {
        self.waiters.lock().unwrap_or_else(PoisonError::into_inner).remove(&address.to_ascii_lowercase());
    }

    fn deliver(&self, created_ms: i64, to: &str, mail: OtpMail) {
        let mut waiters = self.waiters.lock().unwrap_or_else(PoisonError::into_inner);
        match waiters.remove(to) {
            Some(w) if created_ms >= w.not_before_ms => {
                let _ = w.tx.send(mail);
            }
            Some(w) => {
                waiters.insert(to.to_owned(), w);
                self.unclaimed_codes.fetch_add(1, Ordering::Relaxed);
            }
            None => {
                self.unclaimed_codes.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    /// Scans the file outbox `dir` until `stop` turns true.
    pub async fn watch(self: Arc<Self>, dir: PathBuf, stop: watch::Receiver<bool>) {
        self.watch_as(Layout::FileOutbox, dir, stop).await;
    }

    /// Scans `dir`, laid out as `layout`, until `stop` turns true.
    pub async fn watch_as(self: Arc<Self>, layout: Layout, dir: PathBuf, mut stop: watch::Receiver<bool>) {
        let mut seen: HashSet<PathBuf> = HashSet::new();
        loop {
            self.scan(layout, &dir, &mut seen);
            tokio::select! {
                () = tokio::time::sleep(SCAN_INTERVAL) => {}
                _ = stop.changed() => return,
            }
        }
    }

    fn scan(&self, layout: Layout, dir: &Path, seen: &mut HashSet<PathBuf>) {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        for entry in entries.filter_map(Result::ok) {
            let name = entry.file_name().to_string_lossy().into_owned();
            // `.NAME.tmp` files are being written; the server renames them when complete. A Maildir's writer
            // renames complete files from `tmp/` into `new/`.
            if name.starts_with('.') || (layout == Layout::FileOutbox && !name.ends_with(".eml")) {
                continue;
            }
            let path = entry.path();
            if seen.contains(&path) {
                continue;
            }
            let Ok(raw) = std::fs::read_to_string(&path) else {
                continue;
            };
            let written = entry.metadata().and_then(|m| m.modified()).unwrap_or_else(|_| SystemTime::now());
            // A mail read is moved out of the way (into `read/` beside it), so that each scan lists only new
            // files: a directory of tens of thousands of mails listed a hundred times a second would cost the
            // machine the bench measures. Moved, not deleted: ext4 looks harder for a free inode while many
            // were deleted recently, which would bill the bench's cleanup to the server's next mail file.
            let read = dir.join("read");
            let moved = std::fs::create_dir_all(&read).and_then(|()| std::fs::rename(&path, read.join(&name)));
            if moved.is_err() {
                seen.insert(path);
            }
            let created_ms = match layout {
                // File names are `CREATED_AT_MS-ID.eml`.
                Layout::FileOutbox => name.split('-').next().and_then(|n| n.parse::<i64>().ok()).unwrap_or(0),
                // The modification time comes from the kernel's coarse clock, up to a tick behind the clock the
                // waiter read before identify: a mail written a few ms later may carry an earlier time. Users
                // rotate, so no earlier mail of the same user is that recent.
                Layout::Maildir => written
                    .duration_since(SystemTime::UNIX_EPOCH)
                    .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
                    .saturating_add(COARSE_CLOCK_SLACK_MS),
            };
            let (to, body) = parse(&raw);
            match otp_in(&body) {
                Some(otp) => self.deliver(created_ms, &to, OtpMail { otp, written }),
                None => {
                    self.notifications.fetch_add(1, Ordering::Relaxed);
                }
            }
        }
    }

    /// Waits until at least `count` notifications were seen, or `timeout` passed.
    pub async fn wait_notifications(&self, count: u64, timeout: Duration) -> u64 {
        let deadline = Instant::now() + timeout;
        loop {
            let n = self.notifications.load(Ordering::Relaxed);
            if n >= count || Instant::now() > deadline {
                return n;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

/// The recipient address (lower case) and the decoded body of a single-part mail.
fn parse(raw: &str) -> (String, String) {
    let (head, body) = raw.split_once("\r\n\r\n").or_else(|| raw.split_once("\n\n")).unwrap_or((raw, ""));
    let to = head.lines().find_map(|l| l.strip_prefix("To: ")).unwrap_or_default();
    let to = match (to.rfind('<'), to.rfind('>')) {
        (Some(a), Some(b)) if a < b => &to[a + 1..b],
        _ => to,
    };
    let qp = head.to_ascii_lowercase().contains("content-transfer-encoding: quoted-printable");
    let body = if qp { decode_quoted_printable(body) } else { body.to_owned() };
    (to.trim().to_ascii_lowercase(), body)
}

/// The one-time code: the line that holds only digits.
fn otp_in(body: &str) -> Option<String> {
    body.lines().map(str::trim).find(|l| l.len() >= 4 && l.chars().all(|c| c.is_ascii_digit())).map(str::to_owned)
}

fn decode_quoted_printable(text: &str) -> String {
    let joined = text.replace("=\r\n", "").replace("=\n", "");
    let bytes = joined.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'='
            && let Some(hex) = joined.get(i + 1..i + 3)
            && let Ok(b) = u8::from_str_radix(hex, 16)
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_code_in_a_quoted_printable_mail() {
        let raw = "From: Gatehouse <noreply@gatehouse.invalid>\r\nTo: bench7@example.test\r\nSubject: Your password reset code\r\n\
                   Content-Transfer-Encoding: quoted-printable\r\n\r\nHello bench7,\r\n\r\nyour code is:\r\n\r\n    12345678\r\n\r\n\
                   It is valid for 10 minutes. If you did not ask to reset your password, you can ignore this m=\r\nessage=3D ok.\r\n";
        let (to, body) = parse(raw);
        assert_eq!(to, "bench7@example.test");
        assert_eq!(otp_in(&body).as_deref(), Some("12345678"));
        assert!(body.contains("message= ok."));
    }

    #[test]
    fn a_maildir_mail_counts_from_its_modification_time() -> anyhow::Result<()> {
        let dir = tempfile::tempdir()?;
        // As aiosmtpd's Mailbox handler stores it: a name without a creation time, LF line ends, extra headers.
        let raw = "X-Peer: ('127.0.0.1', 40000)\nX-MailFrom: noreply@gatehouse.invalid\nX-RcptTo: bench3@example.test\n\
                   From: Gatehouse <noreply@gatehouse.invalid>\nTo: bench3@example.test\nSubject: Your password reset \
                   code\n\nHello bench3,\n\nyour code is:\n\n    87654321\n";
        std::fs::write(dir.path().join("1764428400.M1P2Q3.host"), raw)?;
        let outbox = Outbox::default();
        let mut early = outbox.expect("bench3@example.test", 0);
        outbox.scan(Layout::FileOutbox, dir.path(), &mut HashSet::new());
        assert!(early.try_recv().is_err(), "the file outbox takes only .eml files");
        outbox.scan(Layout::Maildir, dir.path(), &mut HashSet::new());
        assert_eq!(early.try_recv().map(|m| m.otp).ok().as_deref(), Some("87654321"));
        assert!(!outbox.is_waiting("bench3@example.test"));
        Ok(())
    }

    #[test]
    fn a_notification_has_no_code() {
        let (to, body) =
            parse("To: <Bench1@Example.test>\n\nHello,\n\nthe password was changed at 2026-01-01 10:00 UTC.\n");
        assert_eq!(to, "bench1@example.test");
        assert_eq!(otp_in(&body), None);
    }
}
