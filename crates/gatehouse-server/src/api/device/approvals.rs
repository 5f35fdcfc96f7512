//! `GET /rest/device/approvals[?wait=SECONDS]` (signed) — the device user's pending requests, waiting up to
//! `wait` seconds for one to appear; `POST /rest/device/approvals/{id}/decision` —
//! `{"deviceId", "decision": "approve"|"deny", "number", "signature"}`, decided once, before expiry.

use std::time::Duration;

use axum::Json;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use gatehouse_core::audit::AuditEvent;
use gatehouse_core::authenticator::{approval_message, verify};
use gatehouse_core::clock::format_timestamp;
use gatehouse_core::flow::ErrorCode;
use gatehouse_core::ports::{ApprovalStatus, Effect};
use gatehouse_core::random::random_id;
use serde::Deserialize;

use super::SignedByDevice;
use crate::errors::ApiError;
use crate::extract::JsonBody;
use crate::state::AppState;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PendingQuery {
    pub wait: Option<u64>,
}

#[derive(Deserialize)]
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
    let approvals = loop {
        let found = state.store.pending_approvals(&user_id, state.clock.now_ms()).await?;
        if !found.is_empty() || tokio::time::Instant::now() >= deadline {
            break found;
        }
        tokio::time::timeout_at(deadline, crate::api::approval_event(&mut events, &wanted)).await.ok();
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
    let unknown = || rejected(StatusCode::NOT_FOUND, ErrorCode::ApprovalNotFound, "no such request for this device");
    let device = state.store.get_device(&body.device_id).await?.ok_or_else(unknown)?;
    let approval =
        state.store.get_approval(&approval_id).await?.filter(|a| a.user_id == device.user_id).ok_or_else(unknown)?;
    let message = approval_message(&approval.id, &approval.nonce, &body.decision, body.number);
    if !verify(&device.public_key, &message, &body.signature) {
        return Err(rejected(StatusCode::UNAUTHORIZED, ErrorCode::DeviceNotAuthenticated, "bad signature"));
    }
    let now = state.clock.now_ms();
    if approval.status != ApprovalStatus::Pending || now >= approval.expires_at {
        return Err(rejected(
            StatusCode::CONFLICT,
            ErrorCode::ApprovalNotPending,
            "the request was decided already or expired",
        ));
    }
    // Approving with the wrong number is a denial: whoever approves blindly (push fatigue) does not get in.
    let matched = !approve || body.number == approval.number;
    let granted = approve && matched;
    if !state.store.decide_approval(&approval.id, &device.id, granted, now).await? {
        return Err(rejected(
            StatusCode::CONFLICT,
            ErrorCode::ApprovalNotPending,
            "the request was decided already or expired",
        ));
    }
    let user = state.store.get_user(&device.user_id).await?;
    let audit = AuditEvent {
        id: random_id(state.random.as_ref()),
        at: now,
        event: "approval.decided".into(),
        actor: format!("device:{}", device.id),
        user_id: Some(device.user_id.clone()),
        username: user.map(|u| u.username),
        flow_id: None,
        session_id: None,
        ip: None,
        outcome: if granted {
            "approved"
        } else if matched {
            "denied"
        } else {
            "wrong_number"
        }
        .into(),
        details: serde_json::json!({ "approval": approval.id, "kind": approval.kind }),
    };
    state.store.apply(&[Effect::Audit(audit)]).await?;
    if !matched {
        return Err(rejected(
            StatusCode::BAD_REQUEST,
            ErrorCode::NumberMismatch,
            "the number does not match; the request was denied",
        ));
    }
    Ok(Json(serde_json::json!({
        "meta": { "type": "jsonapi.metadata.document", "timestamp": format_timestamp(now) },
        "data": { "type": "approval", "id": approval.id, "attributes": { "status": if granted { "approved" } else { "denied" } } },
    })))
}
