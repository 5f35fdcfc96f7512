//! `gatehouse doctor`: what a node needs, checked one by one — the configuration, the database (on SQLite, also
//! whether the library was built with the flags of `.cargo/config.toml`) and its migrations, the server key (and
//! that it is the key the other nodes use), mail delivery, and the clock against the database's. One line per
//! check; the exit code is 1 when any check failed.

use std::process::ExitCode;
use std::time::{Duration, Instant};

use gatehouse_core::clock::{Clock as _, SystemClock};
use gatehouse_core::config::{Config, Severity};
use gatehouse_store::{Backend, OpenOptions, migration_status, redact_url, sqlite_build_costs};

use super::Overrides;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Verdict {
    Ok,
    Warn,
    Fail,
}

struct Report {
    worst: Verdict,
}

impl Report {
    fn line(&mut self, verdict: Verdict, check: &str, text: impl AsRef<str>) {
        let label = match verdict {
            Verdict::Ok => "ok  ",
            Verdict::Warn => "warn",
            Verdict::Fail => "FAIL",
        };
        println!("{label}  {check}: {}", text.as_ref());
        self.worst = self.worst.max(verdict);
    }
}

/// Clock differences beyond these make codes, leases and sessions expire early or late.
const CLOCK_WARN_MS: i64 = 1_000;
const CLOCK_FAIL_MS: i64 = 5_000;

pub async fn run(overrides: &Overrides) -> anyhow::Result<ExitCode> {
    let mut report = Report { worst: Verdict::Ok };
    let source = overrides.source().describe();
    let config = match overrides.load() {
        Ok(c) => c,
        Err(e) => {
            report.line(Verdict::Fail, "config", format!("{source}: {e:#}"));
            return Ok(ExitCode::FAILURE);
        }
    };
    let warnings = config.security_findings().into_iter().filter(|f| f.severity == Severity::Warning).count();
    match warnings {
        0 => report.line(Verdict::Ok, "config", format!("{source} is valid")),
        n => {
            report.line(Verdict::Warn, "config", format!("{source} is valid, {n} warnings (`gatehouse config check`)"))
        }
    }
    check_database(&config, &mut report).await;
    check_delivery(&config, &mut report).await;
    Ok(if report.worst == Verdict::Fail { ExitCode::FAILURE } else { ExitCode::SUCCESS })
}

async fn check_database(config: &Config, report: &mut Report) {
    let url = config.database_url();
    let options = OpenOptions {
        url: url.clone(),
        schema: config.storage.schema.clone(),
        // PostgreSQL keeps one connection for approval events.
        max_connections: 2,
        migrate: false,
        lock_wait: Duration::from_millis(config.storage.lock_wait_ms),
    };
    let started = Instant::now();
    let store = match gatehouse_store::open(&options).await {
        Ok(store) => store,
        Err(e) => {
            report.line(Verdict::Fail, "database", format!("{}: {e}", redact_url(&url)));
            return;
        }
    };
    if let Err(e) = store.ping().await {
        report.line(Verdict::Fail, "database", format!("{}: {e}", redact_url(&url)));
        return;
    }
    report.line(
        Verdict::Ok,
        "database",
        format!("{} answers ({} ms)", redact_url(&url), started.elapsed().as_millis()),
    );

    if options.backend().is_ok_and(|b| b == Backend::Sqlite) {
        match sqlite_build_costs().await {
            Ok(costs) if costs.is_empty() => {
                report.line(Verdict::Ok, "sqlite build", "a page cache per connection, no memory statistics")
            }
            Ok(costs) => report.line(
                Verdict::Warn,
                "sqlite build",
                format!(
                    "{} (slower reads under load; build from the repository, whose .cargo/config.toml sets \
                     LIBSQLITE3_FLAGS)",
                    costs.join("; ")
                ),
            ),
            Err(e) => report.line(Verdict::Warn, "sqlite build", e.to_string()),
        }
    }

    match migration_status(&options).await {
        Ok(status) if !status.unknown().is_empty() => report.line(
            Verdict::Fail,
            "migrations",
            format!(
                "the database has migrations this build does not know: {:?} (a newer version migrated it)",
                status.unknown()
            ),
        ),
        Ok(status) if !status.pending().is_empty() => report.line(
            Verdict::Warn,
            "migrations",
            format!(
                "{} pending: {:?} (`gatehouse migrate`, or the next `gatehouse serve`)",
                status.pending().len(),
                status.pending()
            ),
        ),
        Ok(status) => report.line(Verdict::Ok, "migrations", format!("all {} applied", status.applied.len())),
        Err(e) => report.line(Verdict::Fail, "migrations", e.to_string()),
    }

    match gatehouse_server::find_server_key(config) {
        Ok(None) => report.line(
            Verdict::Warn,
            "key",
            "none yet: the first `gatehouse serve` generates one in the data directory",
        ),
        Err(e) => report.line(Verdict::Fail, "key", format!("{e:#}")),
        Ok(Some((key, from))) => match store.registered_key().await {
            Ok(Some(registered)) if registered == key.fingerprint() => {
                report.line(Verdict::Ok, "key", format!("{from}, the same as the other nodes'"));
            }
            Ok(Some(_)) => report.line(
                Verdict::Fail,
                "key",
                format!(
                    "{from} differs from the key the other nodes use with this database: give every node the same key"
                ),
            ),
            Ok(None) => report.line(Verdict::Ok, "key", format!("{from} (no node has used this database yet)")),
            Err(e) => report.line(Verdict::Fail, "key", e.to_string()),
        },
    }

    let before = SystemClock.now_ms();
    match store.database_time().await {
        Ok(db) => {
            // The database's time is compared with the middle of the round trip.
            let after = SystemClock.now_ms();
            let skew = (db - (before + after) / 2).abs();
            let verdict = match skew {
                s if s > CLOCK_FAIL_MS => Verdict::Fail,
                s if s > CLOCK_WARN_MS => Verdict::Warn,
                _ => Verdict::Ok,
            };
            report.line(verdict, "clock", format!("{skew} ms from the database's"));
        }
        Err(e) => report.line(Verdict::Fail, "clock", e.to_string()),
    }
}

async fn check_delivery(config: &Config, report: &mut Report) {
    let delivery = match gatehouse_server::delivery_from_config(config) {
        Ok(d) => d,
        Err(e) => {
            report.line(Verdict::Fail, "delivery", format!("{e:#}"));
            return;
        }
    };
    match tokio::time::timeout(Duration::from_secs(15), delivery.check()).await {
        Ok(Ok(())) => report.line(Verdict::Ok, "delivery", delivery.describe()),
        Ok(Err(why)) => report.line(Verdict::Fail, "delivery", why),
        Err(_) => report.line(Verdict::Fail, "delivery", format!("{}: no answer within 15 s", delivery.describe())),
    }
}
