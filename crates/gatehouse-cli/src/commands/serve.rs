use std::process::ExitCode;
use std::sync::Arc;

use gatehouse_core::clock::SystemClock;
use gatehouse_core::random::SystemRandom;
use gatehouse_server::StartOptions;

use super::Overrides;

pub async fn run(overrides: &Overrides, bind: Option<String>) -> anyhow::Result<ExitCode> {
    let mut config = overrides.load()?;
    if let Some(bind) = bind {
        config.server.bind = bind;
    }
    tracing::info!(config = %overrides.source().describe(), "starting gatehouse {}", env!("CARGO_PKG_VERSION"));
    raise_open_files_limit();
    let server = gatehouse_server::start(StartOptions {
        config,
        clock: Arc::new(SystemClock),
        random: Arc::new(SystemRandom),
        store: None,
    })
    .await?;
    server.wait_for(shutdown_signal()).await?;
    Ok(ExitCode::SUCCESS)
}

/// Below this many open files a node is warned: each connection is one, and every enrolled device holds one in a long
/// poll all day.
const FEW_OPEN_FILES: u64 = 4096;

/// Raises the soft limit of open files to the hard limit, as Go's runtime does for every program. Many systems start
/// a process with a soft limit of 1,024 (and a hard one far above): a node would refuse connections at about a
/// thousand waiting devices while the system allows many more.
fn raise_open_files_limit() {
    use rustix::process::{Resource, Rlimit, getrlimit, setrlimit};
    let before = getrlimit(Resource::Nofile);
    if before.current != before.maximum
        && let Err(e) = setrlimit(Resource::Nofile, Rlimit { current: before.maximum, maximum: before.maximum })
    {
        tracing::warn!(error = %e, "cannot raise the limit of open files");
    }
    let limit = getrlimit(Resource::Nofile).current;
    let shown = limit.map_or_else(|| "unlimited".to_owned(), |n| n.to_string());
    if limit.is_some_and(|n| n < FEW_OPEN_FILES) {
        tracing::warn!(limit = %shown, "few open files allowed: each connection takes one (raise LimitNOFILE or ulimit -n)");
    } else {
        tracing::info!(limit = %shown, "open files allowed");
    }
}

/// Ctrl-C or SIGTERM.
async fn shutdown_signal() {
    #[cfg(unix)]
    {
        let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!(error = %e, "cannot listen for SIGTERM");
                let _ = tokio::signal::ctrl_c().await;
                return;
            }
        };
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}
