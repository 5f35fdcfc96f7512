//! An example web application that keeps its own users and passwords and adds Gatehouse's authenticator as
//! their second factor, through Gatehouse's v1 API for third-party applications.

mod app;
mod config;
mod db;
mod error;
mod gatehouse;
mod html;
mod passwords;
mod routes;
mod session;

use std::net::SocketAddr;

use clap::Parser as _;
use tracing_subscriber::EnvFilter;

use crate::app::AppState;
use crate::config::Config;
use crate::gatehouse::Gatehouse;
use crate::passwords::Passwords;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let config = Config::parse();
    tracing_subscriber::fmt()
        .with_env_filter(EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")))
        .with_writer(std::io::stderr)
        .init();
    // reqwest's rustls is built without a crypto provider (gatehouse-server picks ring for the workspace).
    let _ = rustls::crypto::ring::default_provider().install_default();

    let state = AppState {
        db: db::open(&config.database).await?,
        gatehouse: Gatehouse::new(&config.gatehouse_url, config.api_key)?,
        passwords: Passwords::new().await?,
        two_step: config.two_step,
    };
    let listener = tokio::net::TcpListener::bind(config.listen).await?;
    eprintln!("relying-app listening on http://{}", listener.local_addr()?);
    tracing::info!(gatehouse = %config.gatehouse_url, two_step = ?config.two_step, "started");

    let app = app::router(state).into_make_service_with_connect_info::<SocketAddr>();
    axum::serve(listener, app).with_graceful_shutdown(shutdown()).await?;
    Ok(())
}

/// Ctrl-C or SIGTERM: finish the requests in flight, then stop.
async fn shutdown() {
    let interrupt = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = interrupt => {}
        () = terminate => {}
    }
}
