//! The Gatehouse server: REST API over the flow engine, the message delivery worker, the hashing pool, and
//! the wiring that starts them together.

pub mod api;
mod app;
mod documents;
mod errors;
mod extract;
mod hashing;
pub mod messaging;
mod secrets;
mod state;

pub use app::{RunningServer, StartOptions, start};
pub use hashing::HashPool;
pub use secrets::load_server_key;
pub use state::AppState;
