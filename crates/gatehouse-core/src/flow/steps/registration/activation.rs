//! Authenticator activation during registration (next step `APP_2FA_ACTIVATION_REQUIRED`): after the account is
//! stored, the answer carries the activation URI, its QR code and the code to type; the client polls
//! (`app-2fa/activation/poll/`) until a device activated, at most the enrollment timeout.

use crate::authenticator_service::start_activation;
use crate::config::App2faActivationStep;
use crate::flow::codes::{ErrorCode, NextStep, Outcome};
use crate::flow::engine::{Ctx, EngineError};
use crate::flow::session::Scratch;

impl Ctx<'_> {
    pub(crate) async fn enter_activation(&mut self, cfg: &App2faActivationStep) -> Result<Outcome, EngineError> {
        let user = self.load_user().await?.ok_or(EngineError::Inconsistent("activation before persisting"))?;
        let audit = self.audit_event("device.activation_started", "ok", serde_json::json!({ "by": "registration" }));
        let d = self.deps;
        let activation = start_activation(d.store, d.key, d.random, d.config, &user, self.now, audit).await.map_err(
            |e| match e {
                crate::authenticator_service::ActivationError::Store(e) => EngineError::Store(e),
                crate::authenticator_service::ActivationError::Qr(_) => EngineError::Inconsistent("QR code"),
            },
        )?;
        let timeout = i64::try_from(cfg.enrollment_timeout_seconds.saturating_mul(1000)).unwrap_or(i64::MAX);
        let expires_at = self.now.saturating_add(timeout).min(activation.expires_at);
        self.state.scratch = Scratch::Activation { started_at: self.now, expires_at };
        let a = serde_json::to_value(&activation).unwrap_or_default();
        if let serde_json::Value::Object(map) = a {
            self.attributes.extend(map);
        }
        Ok(Outcome::Continue(Some(NextStep::App2faActivationRequired)))
    }

    pub(crate) async fn poll_activation(&mut self) -> Result<Outcome, EngineError> {
        let Scratch::Activation { started_at, expires_at } = self.state.scratch else {
            return Err(EngineError::Inconsistent("activation step without its state"));
        };
        let user_id = self.user_id().ok_or(EngineError::Inconsistent("activation without an account"))?;
        let devices = self.deps.store.list_devices(&user_id).await?;
        if devices.iter().any(|d| d.created_at >= started_at) {
            self.audit("registration.device_activated", "ok", serde_json::json!({}));
            return self.advance().await;
        }
        if self.now >= expires_at {
            return Ok(self.terminate_with(ErrorCode::App2faActivationExpired));
        }
        Ok(Outcome::Continue(Some(NextStep::App2faActivationRequired)))
    }
}
