//! `GET /rest/protected/session` describes the authenticated session; `DELETE` ends it (logout).

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use gatehouse_core::clock::format_timestamp;

use super::Authenticated;
use crate::api::authentication::SESSION_COOKIE;
use crate::api::flow_session::with_cookie;
use crate::documents;
use crate::errors::ApiError;
use crate::extract::{set_cookie, wants_secure_cookie};
use crate::state::AppState;

#[tracing::instrument(name = "protected.session", skip_all)]
pub async fn show(State(state): State<AppState>, auth: Authenticated) -> Json<serde_json::Value> {
    let s = &auth.session;
    Json(documents::resource(
        state.clock.now_ms(),
        "session",
        &s.id,
        serde_json::json!({
            "username": auth.user.username,
            "userId": auth.user.id,
            "factors": s.factors,
            "authenticatedAt": format_timestamp(s.created_at),
            "lastSeenAt": format_timestamp(s.last_seen_at),
            "expiresAt": format_timestamp(s.expires_at),
        }),
    ))
}

#[tracing::instrument(name = "protected.logout", skip_all)]
pub async fn logout(
    State(state): State<AppState>,
    headers: HeaderMap,
    auth: Authenticated,
) -> Result<Response, ApiError> {
    state.protected().logout(&auth.me()).await?;
    let secure = wants_secure_cookie(&state.config.server, &headers);
    Ok(with_cookie(StatusCode::NO_CONTENT.into_response(), &set_cookie(SESSION_COOKIE, None, secure)))
}
