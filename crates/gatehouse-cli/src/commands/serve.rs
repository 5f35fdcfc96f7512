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
