//! Application access: `POST /rest/public/authentication/applications/{applicationId}/access/` and
//! `POST …/default-application/access/`. A session that may use the application (authenticated, with the
//! application's roles) gets 200; otherwise the application's login flow starts (new flow cookie) and the
//! answer is 401 `NOT_AUTHORIZED` with `meta.nextAuthStep` naming its first step.

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use gatehouse_core::flow::{ErrorCode, FlowError, Outcome};

use crate::api::flow_session;
use crate::api::protected::Authenticated;
use crate::documents;
use crate::errors::ApiError;
use crate::extract::{ClientIp, JsonBody, NoInput};
use crate::state::AppState;

#[tracing::instrument(name = "auth.application_access", skip_all, fields(application = %application_id))]
pub async fn application(
    State(state): State<AppState>,
    Path(application_id): Path<String>,
    ClientIp(ip): ClientIp,
    headers: HeaderMap,
    JsonBody(_): JsonBody<NoInput>,
) -> Result<Response, ApiError> {
    access(&state, &headers, ip, &application_id).await
}

#[tracing::instrument(name = "auth.default_application_access", skip_all)]
pub async fn default_application(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    headers: HeaderMap,
    JsonBody(_): JsonBody<NoInput>,
) -> Result<Response, ApiError> {
    let id = state.config.authentication.default_application.clone();
    access(&state, &headers, ip, &id).await
}

async fn access(state: &AppState, headers: &HeaderMap, ip: Option<String>, id: &str) -> Result<Response, ApiError> {
    let app = state.config.authentication.application(id).ok_or(ApiError::ApplicationNotFound)?;
    match Authenticated::from_headers(headers, state).await {
        Ok(auth) if app.admits(&auth.user) => {
            let attributes = serde_json::Map::from_iter([("application".to_owned(), serde_json::json!(app.id))]);
            let doc =
                documents::session(state.clock.now_ms(), "authentication.session", &auth.session.id, None, attributes);
            return Ok((StatusCode::OK, axum::Json(doc)).into_response());
        }
        Ok(_) | Err(ApiError::NotAuthenticated) => {}
        Err(e) => return Err(e),
    }
    let (flow_id, app_id) = (app.flow.clone(), app.id.clone());
    let kind = gatehouse_core::flow::FlowKind::Authentication;
    let started = flow_session::start(state, headers, ip, kind, &flow_id, Some(&app_id), None).await?;
    let Outcome::Continue(Some(next)) = started.outcome else {
        return Ok(started.response);
    };
    // The flow waits for its first step: not authorized yet, here is what to do.
    let cookies: Vec<_> = started.response.headers().get_all(axum::http::header::SET_COOKIE).iter().cloned().collect();
    let mut response = ApiError::Flow {
        status: StatusCode::UNAUTHORIZED,
        next: Some((kind.next_step_attribute(), next)),
        errors: vec![FlowError::new(ErrorCode::NotAuthorized)],
        lock_expiry: None,
    }
    .into_response();
    for c in cookies {
        response.headers_mut().append(axum::http::header::SET_COOKIE, c);
    }
    Ok(response)
}
