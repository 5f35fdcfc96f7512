//! The device API (`/rest/device/…`) the authenticator app talks to. Devices hold no cookie: activation
//! proves itself with the one-time code, later calls with Ed25519 signatures (requests: `X-Device-Id`,
//! `X-Device-Timestamp`, `X-Device-Signature` over method, path, time and body hash; decisions: a signature
//! over the request's id, nonce, decision and number).

mod activate;
mod approvals;

use axum::extract::{FromRequest, Request};
use axum::http::{Method, StatusCode};
use axum::routing::{get, post};
use gatehouse_core::authenticator::{request_message, verify};
use gatehouse_core::ports::Device;

use super::routes::{Answer, Auth, Body, Doc, Query, Routes};
use crate::errors::ApiError;
use crate::state::AppState;

/// How far a signed request's timestamp may be from the server's clock.
const MAX_SKEW_MS: i64 = 60_000;

pub fn routes() -> Routes {
    Routes::new()
        .at(
            Method::POST,
            "/device/activate",
            post(activate::handler),
            Doc::new(
                "Activate a device with its one-time code and public key",
                Auth::Public,
                Answer::Document("the device"),
            )
            .body(Body::of::<activate::ActivateRequest>()),
        )
        .at(
            Method::GET,
            "/device/approvals",
            get(approvals::pending),
            Doc::new(
                "The device user's pending approvals (long poll with `wait`)",
                Auth::Device,
                Answer::Document("approvals"),
            )
            .query(Query::of::<approvals::PendingQuery>()),
        )
        .at(
            Method::POST,
            "/device/approvals/{approval_id}/decision",
            post(approvals::decide),
            Doc::new("Approve or deny, signed", Auth::Device, Answer::Document("the decision"))
                .body(Body::of::<approvals::DecisionRequest>()),
        )
}

fn refused(title: &str) -> ApiError {
    ApiError::Rejected {
        status: StatusCode::UNAUTHORIZED,
        code: gatehouse_core::flow::ErrorCode::DeviceNotAuthenticated,
        title: title.into(),
        pointer: None,
    }
}

/// How stale a device's `last_seen_at` may be before a signed request writes it again.
const LAST_SEEN_PRECISION_MS: gatehouse_core::clock::Millis = 60_000;

/// A request signed by a registered device (and its body).
pub struct SignedByDevice {
    pub device: Device,
    pub body: axum::body::Bytes,
}

impl FromRequest<AppState> for SignedByDevice {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, ApiError> {
        let (id, ts, sig) = {
            let header = |name: &str| req.headers().get(name).and_then(|v| v.to_str().ok()).map(str::to_owned);
            (header("x-device-id"), header("x-device-timestamp"), header("x-device-signature"))
        };
        let (Some(id), Some(ts), Some(sig)) = (id, ts, sig) else {
            return Err(refused("sign the request (X-Device-Id, X-Device-Timestamp, X-Device-Signature)"));
        };
        let timestamp: i64 = ts.parse().map_err(|_| refused("X-Device-Timestamp must be milliseconds"))?;
        // abs_diff: a timestamp near i64::MIN or MAX is just far off, never an overflow.
        if timestamp.abs_diff(state.clock.now_ms()) > MAX_SKEW_MS.unsigned_abs() {
            return Err(refused("the request is too old or from the future (check the device clock)"));
        }
        let method = req.method().as_str().to_owned();
        // The path as the device sent it (routers nested under /rest see it shortened).
        let uri =
            req.extensions().get::<axum::extract::OriginalUri>().map_or_else(|| req.uri().clone(), |o| o.0.clone());
        let path = uri.path_and_query().map_or_else(|| uri.path().to_owned(), |p| p.as_str().to_owned());
        let body = axum::body::Bytes::from_request(req, state).await.map_err(|_| ApiError::PayloadTooLarge)?;
        let device = state.store.get_device(&id).await?.ok_or_else(|| refused("unknown or removed device"))?;
        if !verify(&device.public_key, &request_message(&method, &path, timestamp, &body), &sig) {
            return Err(refused("bad signature"));
        }
        // A device waits in long polls all day: one write per poll would keep the writer busy for a "last seen"
        // that nobody reads to the second (on SQLite it would also send every waiter to the database).
        let now = state.clock.now_ms();
        if device.last_seen_at.is_none_or(|seen| now.saturating_sub(seen) >= LAST_SEEN_PRECISION_MS) {
            state.store.touch_device(&device.id, now).await?;
        }
        Ok(Self { device, body })
    }
}
