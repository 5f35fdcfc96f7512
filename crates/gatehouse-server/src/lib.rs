//! The Gatehouse server: REST API over the flow engine, the message delivery worker, the hashing pool, and
//! the wiring that starts them together.

pub mod api;
mod app;
mod completion;
mod documents;
mod errors;
mod extract;
mod hashing;
mod headers;
pub mod housekeeping;
pub mod messaging;
pub mod metrics;
mod secrets;
mod state;
pub mod ui;

pub use api::admin::ADMIN_TOKEN_PURPOSE;
pub use app::{RunningServer, StartOptions, start};
pub use hashing::HashPool;
pub use messaging::delivery_from_config;
pub use secrets::{find_server_key, load_server_key};
pub use state::AppState;

/// Selects rustls' ring provider for every TLS client in the process (SMTP, SMS gateway). Idempotent.
pub fn install_crypto_provider() {
    // Only fails when a provider is installed already, which is what we want.
    let _ = rustls::crypto::ring::default_provider().install_default();
}
