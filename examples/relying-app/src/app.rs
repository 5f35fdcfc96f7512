//! The shared state and the routes.

use axum::Router;
use axum::middleware::from_fn_with_state;
use axum::routing::{get, post};
use sqlx::SqlitePool;

use crate::config::TwoStepMode;
use crate::gatehouse::Gatehouse;
use crate::passwords::Passwords;
use crate::routes::{account, home, login, signup, two_step};
use crate::session;

#[derive(Clone)]
pub struct AppState {
    pub db: SqlitePool,
    pub gatehouse: Gatehouse,
    pub passwords: Passwords,
    pub two_step: TwoStepMode,
}

pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/", get(home::landing))
        .route("/signup", get(signup::show).post(signup::submit))
        .route("/login", get(login::show).post(login::submit))
        .route("/login/two-step", get(two_step::show).post(two_step::submit))
        .route("/login/callback", get(two_step::callback))
        .route("/account", get(account::show))
        .route("/account/two-step/enable", post(account::enable))
        .route("/account/two-step/confirm", post(account::confirm))
        .route("/account/two-step/disable", post(account::disable))
        .route("/logout", post(login::logout))
        // Only the routes above pass the gate; an unknown path is a plain 404.
        .route_layer(from_fn_with_state(state.clone(), session::gate))
        .route("/healthz", get(|| async { "ok" }))
        .with_state(state)
}
