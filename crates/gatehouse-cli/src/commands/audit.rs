//! `gatehouse audit list|tail`: the audit trail as JSON lines (one event per line, the same shape as
//! `GET /rest/admin/audit`), with the API's filters.

use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, Subcommand};
use gatehouse_core::audit::{AuditCursor, AuditFilters, AuditOrder, AuditQuery};
use gatehouse_core::clock::{Clock as _, SystemClock};

use super::{Overrides, open_store};

#[derive(Args)]
pub struct Filters {
    /// A user id or login name.
    #[arg(long)]
    user: Option<String>,
    /// An event name (`user.locked`) or a prefix ending in `.` (`user.`).
    #[arg(long)]
    action: Option<String>,
    /// `ok`, `failed`, `wrong`, `stealth`, …
    #[arg(long)]
    outcome: Option<String>,
    /// Events at or after this time (RFC 3339 or milliseconds since the epoch).
    #[arg(long)]
    from: Option<String>,
    /// Events before this time.
    #[arg(long)]
    to: Option<String>,
}

impl Filters {
    fn query(&self, limit: Option<u32>, cursor: Option<&str>, order: AuditOrder) -> anyhow::Result<AuditQuery> {
        let filters = AuditFilters {
            user: self.user.as_deref(),
            action: self.action.as_deref(),
            outcome: self.outcome.as_deref(),
            from: self.from.as_deref(),
            to: self.to.as_deref(),
            limit,
            cursor,
        };
        AuditQuery::parse(&filters, order).map_err(|(name, why)| anyhow::anyhow!("--{name}: {why}"))
    }
}

#[derive(Subcommand)]
pub enum AuditCommand {
    /// Events newest first, one page; the cursor of the next page goes to stderr.
    List {
        #[command(flatten)]
        filters: Filters,
        /// Events per page (1–1000).
        #[arg(long, default_value_t = 100)]
        limit: u32,
        /// Continue after the page that printed this cursor.
        #[arg(long)]
        cursor: Option<String>,
    },
    /// The last events oldest first; with --follow, then every new one as it is written.
    Tail {
        #[command(flatten)]
        filters: Filters,
        /// How many past events to show first (0–1000).
        #[arg(long, short = 'n', default_value_t = 20)]
        lines: u32,
        /// Keep printing new events (poll every --interval-ms) until interrupted.
        #[arg(long, short = 'f')]
        follow: bool,
        #[arg(long, default_value_t = 1000)]
        interval_ms: u64,
    },
}

pub async fn run(overrides: &Overrides, command: AuditCommand) -> anyhow::Result<ExitCode> {
    let config = overrides.load()?;
    let store = open_store(&config).await?;
    match command {
        AuditCommand::List { filters, limit, cursor } => {
            let query = filters.query(Some(limit), cursor.as_deref(), AuditOrder::NewestFirst)?;
            let events = store.query_audit(&query).await?;
            for e in &events {
                println!("{}", e.view());
            }
            if events.len() == query.limit() as usize
                && let Some(last) = events.last()
            {
                eprintln!("next page: --cursor {}", AuditCursor::of(last).encode());
            }
        }
        AuditCommand::Tail { filters, lines, follow, interval_ms } => {
            // The last `lines` events, printed oldest first.
            let mut after = None;
            if lines > 0 {
                let newest =
                    store.query_audit(&filters.query(Some(lines.min(1000)), None, AuditOrder::NewestFirst)?).await?;
                for e in newest.iter().rev() {
                    println!("{}", e.view());
                }
                after = newest.first().map(AuditCursor::of);
            }
            if after.is_none() {
                // Nothing shown yet: follow from now on.
                after = Some(AuditCursor { at: SystemClock.now_ms(), id: String::new() });
            }
            if !follow {
                return Ok(ExitCode::SUCCESS);
            }
            loop {
                let mut query = filters.query(Some(1000), None, AuditOrder::OldestFirst)?;
                query.after.clone_from(&after);
                let events = store.query_audit(&query).await?;
                for e in &events {
                    println!("{}", e.view());
                }
                if let Some(last) = events.last() {
                    after = Some(AuditCursor::of(last));
                }
                if events.len() < 1000 {
                    tokio::time::sleep(Duration::from_millis(interval_ms.max(50))).await;
                }
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}
