//! `GET /rest/device/approvals[?wait=SECONDS]` (signed) — the device user's pending requests, waiting up to
//! `wait` seconds for one to appear; `POST /rest/device/approvals/{id}/decision` —
//! `{"deviceId", "decision": "approve"|"deny", "number", "signature"}`, decided once, before expiry.

use std::time::Duration;

use axum::Json;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use gatehouse_core::authenticator_service::{DecideError, Decided, Decision, decide as decide_approval};
use gatehouse_core::clock::format_timestamp;
use gatehouse_core::flow::ErrorCode;

use serde::Deserialize;

use super::SignedByDevice;
use crate::errors::ApiError;
use crate::extract::JsonBody;
use crate::state::AppState;

#[derive(Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct PendingQuery {
    pub wait: Option<u64>,
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct DecisionRequest {
    pub device_id: String,
    pub decision: String,
    pub number: u32,
    pub signature: String,
}

#[tracing::instrument(name = "device.pending", skip_all)]
pub async fn pending(
    State(state): State<AppState>,
    query: Result<Query<PendingQuery>, QueryRejection>,
    signed: SignedByDevice,
) -> Result<Json<serde_json::Value>, ApiError> {
    let Query(q) = query.map_err(|e| ApiError::InvalidRequest { title: e.body_text(), pointer: None })?;
    let wait = Duration::from_secs(q.wait.unwrap_or(0).min(state.config.authenticator.poll_wait_seconds));
    let deadline = tokio::time::Instant::now() + wait;
    let user_id = signed.device.user_id.clone();
    let mut events = state.store.approval_events();
    let wanted = format!("created:{user_id}");
    let mut client_waits = true;
    let approvals = loop {
        let found = state.store.pending_approvals(&user_id, state.clock.now_ms()).await?;
        if !found.is_empty() || !client_waits || tokio::time::Instant::now() >= deadline {
            break found;
        }
        client_waits = crate::api::wait_for_news(&mut events, &wanted, deadline).await;
    };
    let username = state.store.get_user(&user_id).await?.map(|u| u.username).unwrap_or_default();
    let data: Vec<serde_json::Value> = approvals
        .iter()
        .map(|a| {
            serde_json::json!({
                "type": "approval",
                "id": a.id,
                "attributes": {
                    "kind": a.kind,
                    "username": username,
                    "context": a.context,
                    "choices": a.choices,
                    "nonce": a.nonce,
                    "expiresAt": format_timestamp(a.expires_at),
                }
            })
        })
        .collect();
    let _ = signed.body;
    Ok(Json(serde_json::json!({
        "meta": { "type": "jsonapi.metadata.document", "timestamp": format_timestamp(state.clock.now_ms()) },
        "data": data,
    })))
}

fn rejected(status: StatusCode, code: ErrorCode, title: &str) -> ApiError {
    ApiError::Rejected { status, code, title: title.into(), pointer: None }
}

#[tracing::instrument(name = "device.decide", skip_all)]
pub async fn decide(
    State(state): State<AppState>,
    Path(approval_id): Path<String>,
    JsonBody(body): JsonBody<DecisionRequest>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let approve = match body.decision.as_str() {
        "approve" => true,
        "deny" => false,
        _ => {
            return Err(ApiError::InvalidRequest {
                title: "decision is approve or deny".into(),
                pointer: Some("/decision".into()),
            });
        }
    };
    let now = state.clock.now_ms();
    let decision = Decision {
        approval_id: &approval_id,
        device_id: &body.device_id,
        approve,
        number: body.number,
        signature: &body.signature,
    };
    let decided =
        match decide_approval(state.store.as_ref(), &state.config, state.random.as_ref(), now, &decision).await {
            Ok(d) => d,
            Err(DecideError::NotFound) => {
                return Err(rejected(
                    StatusCode::NOT_FOUND,
                    ErrorCode::ApprovalNotFound,
                    "no such request for this device",
                ));
            }
            Err(DecideError::BadSignature) => {
                return Err(rejected(StatusCode::UNAUTHORIZED, ErrorCode::DeviceNotAuthenticated, "bad signature"));
            }
            Err(DecideError::NotPending) => {
                return Err(rejected(
                    StatusCode::CONFLICT,
                    ErrorCode::ApprovalNotPending,
                    "the request was decided already or expired",
                ));
            }
            Err(DecideError::Store(e)) => return Err(e.into()),
            Err(DecideError::Internal(why)) => return Err(ApiError::Internal(why)),
        };
    if decided == Decided::WrongNumber {
        return Err(rejected(
            StatusCode::BAD_REQUEST,
            ErrorCode::NumberMismatch,
            "the number does not match; the request was denied",
        ));
    }
    let granted = decided == Decided::Approved;
    Ok(Json(serde_json::json!({
        "meta": { "type": "jsonapi.metadata.document", "timestamp": format_timestamp(now) },
        "data": { "type": "approval", "id": approval_id, "attributes": { "status": if granted { "approved" } else { "denied" } } },
    })))
}
