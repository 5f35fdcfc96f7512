//! REST routes. One file per endpoint; flow calls share [`flow_session`].

pub mod admin;
pub mod authentication;
pub mod device;
mod flow_session;
pub mod health;
pub mod protected;
pub mod public_self_service;

use axum::Router;
use axum::routing::get;

use crate::errors::ApiError;
use crate::extract::require_same_domain;
use crate::state::AppState;

pub fn router(state: AppState) -> Router {
    let rest = Router::new()
        .merge(public_self_service::routes())
        .merge(authentication::routes())
        .merge(protected::routes())
        .merge(admin::routes())
        .merge(device::routes())
        .layer(axum::middleware::from_fn(require_same_domain));
    Router::new()
        .nest("/rest", rest)
        .route("/health/live", get(health::live))
        .route("/health/ready", get(health::ready))
        .fallback(|| async { ApiError::NotFound })
        .method_not_allowed_fallback(|| async { ApiError::MethodNotAllowed })
        .with_state(state)
}
