//! The authentication flow of the default application: password, then the user's second factor (TOTP or SMS
//! code, with a selection when the user has both). A successful flow ends in an authenticated session.

mod app;
mod password;
mod second_factor;

pub use crate::flow::app_factor::OFFLINE_KEY_CONTEXT;
pub use second_factor::TOTP_SEAL_CONTEXT;

use serde::{Deserialize, Serialize};

use crate::audit::AuditEvent;
use crate::clock::Millis;
use crate::flow::codes::{ErrorCode, FlowError, NextStep, Outcome};
use crate::flow::engine::{EngineError, FlowDeps};
use crate::flow::session::{OtpChallenge, SessionStatus};
use crate::ports::{Effect, NewAuthSession};
use crate::random::{random_id, random_token};

/// Second factors, named as the product names its selection options.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Factor {
    /// TOTP from an authenticator app.
    OathOtp,
    /// A code by SMS.
    Mtan,
    /// The Gatehouse authenticator: push approval or offline QR code.
    App2fa,
}

impl Factor {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::OathOtp => "OATH_OTP",
            Self::Mtan => "MTAN",
            Self::App2fa => "APP_2FA",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "OATH_OTP" => Some(Self::OathOtp),
            "MTAN" => Some(Self::Mtan),
            "APP_2FA" => Some(Self::App2fa),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Stage {
    #[default]
    Password,
    Selection,
    Totp,
    Mtan,
    App,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuthState {
    pub stage: Stage,
    pub login: Option<String>,
    pub user_id: Option<String>,
    /// Authentication method ids passed so far, in order.
    pub passed: Vec<String>,
    pub options: Vec<Factor>,
    pub mtan: Option<OtpChallenge>,
    pub app: Option<AppChallenge>,
}

/// The authenticator request of this flow.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AppChallenge {
    pub approval_id: String,
    /// The number the browser shows for number matching.
    pub number: u32,
    /// The offline challenge, once the client asked for one.
    pub offline: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuthAction {
    CheckPassword { username: String, password: String },
    CheckTotp { otp: String },
    CheckMtan { otp: String },
    ResendMtan,
    RetrieveOptions,
    SelectOption { id: String },
    PollApp,
    OfflineChallenge,
    OfflineCheck { otp: String },
}

#[derive(Debug)]
pub struct AuthTurn {
    pub outcome: Outcome,
    pub state: AuthState,
    pub status: SessionStatus,
    pub effects: Vec<Effect>,
    /// The cookie value of the new authenticated session, once the flow succeeded.
    pub session_token: Option<String>,
    /// `temporaryLockExpiry` for the answer's `meta`.
    pub temporary_lock_expiry: Option<Millis>,
    /// Extra `data.attributes` (selection options, the number to match, an offline challenge).
    pub attributes: serde_json::Map<String, serde_json::Value>,
}

pub(crate) struct AuthCtx<'a> {
    pub deps: &'a FlowDeps<'a>,
    pub session_id: &'a str,
    pub ip: Option<&'a str>,
    pub now: Millis,
    pub state: AuthState,
    pub status: SessionStatus,
    pub effects: Vec<Effect>,
    pub session_token: Option<String>,
    pub temporary_lock_expiry: Option<Millis>,
    pub attributes: serde_json::Map<String, serde_json::Value>,
}

/// Handles one call of an authentication flow.
pub async fn handle(
    deps: &FlowDeps<'_>,
    session_id: &str,
    ip: Option<&str>,
    state: AuthState,
    action: AuthAction,
) -> Result<AuthTurn, EngineError> {
    let mut ctx = AuthCtx {
        deps,
        session_id,
        ip,
        now: deps.clock.now_ms(),
        state,
        status: SessionStatus::Active,
        effects: Vec::new(),
        session_token: None,
        temporary_lock_expiry: None,
        attributes: serde_json::Map::new(),
    };
    let outcome = match (ctx.state.stage, action) {
        (Stage::Password, AuthAction::CheckPassword { username, password }) => {
            ctx.check_password(&username, password).await?
        }
        (Stage::Selection, AuthAction::RetrieveOptions) => {
            let ids: Vec<&str> = ctx.state.options.iter().map(|f| f.as_str()).collect();
            ctx.attributes.insert("options".into(), serde_json::json!(ids));
            Outcome::Continue(Some(NextStep::SelectionRequired))
        }
        (Stage::Selection, AuthAction::SelectOption { id }) => ctx.select(&id).await?,
        (Stage::Totp, AuthAction::CheckTotp { otp }) => ctx.check_totp(&otp).await?,
        (Stage::Mtan, AuthAction::CheckMtan { otp }) => ctx.check_mtan(&otp).await?,
        (Stage::Mtan, AuthAction::ResendMtan) => ctx.resend_mtan().await?,
        (Stage::App, AuthAction::PollApp) => ctx.poll_app().await?,
        (Stage::App, AuthAction::OfflineChallenge) => ctx.offline_challenge().await?,
        (Stage::App, AuthAction::OfflineCheck { otp }) => ctx.offline_check(&otp).await?,
        _ => Outcome::Unexpected,
    };
    Ok(AuthTurn {
        outcome,
        state: ctx.state,
        status: ctx.status,
        effects: ctx.effects,
        session_token: ctx.session_token,
        temporary_lock_expiry: ctx.temporary_lock_expiry,
        attributes: ctx.attributes,
    })
}

/// The keyed-hash purpose of authenticated session cookies.
pub const SESSION_TOKEN_PURPOSE: &str = "auth-session";

impl AuthCtx<'_> {
    pub(crate) fn audit(&mut self, event: &str, outcome: &str, details: serde_json::Value) {
        let login = self.state.login.clone();
        self.effects.push(Effect::Audit(AuditEvent {
            id: random_id(self.deps.random),
            at: self.now,
            event: event.to_owned(),
            actor: login.as_ref().map_or_else(|| "anonymous".to_owned(), |l| format!("user:{l}")),
            user_id: self.state.user_id.clone(),
            username: login,
            flow_id: Some("authentication".into()),
            session_id: Some(self.session_id.to_owned()),
            ip: self.ip.map(str::to_owned),
            outcome: outcome.to_owned(),
            details,
        }));
    }

    /// A flow that ends withdraws its push request, so no device is asked about a finished login.
    fn withdraw_approval(&mut self) {
        if let Some(app) = self.state.app.take() {
            self.effects.push(Effect::CancelApproval { id: app.approval_id, at: self.now });
        }
    }

    pub(crate) fn terminate(&mut self, code: ErrorCode) -> Outcome {
        self.withdraw_approval();
        self.status = SessionStatus::Terminated;
        self.audit("flow.terminated", "failed", serde_json::json!({ "codes": [code.as_str()] }));
        Outcome::Terminated(vec![FlowError::new(code)])
    }

    /// The user is authenticated: counters of the factors used reset, temporary lock and unlock count cleared,
    /// and a new session (with a new cookie) created.
    pub(crate) fn complete(&mut self) -> Outcome {
        let Some(user_id) = self.state.user_id.clone() else {
            return self.terminate(ErrorCode::AuthenticationFailed);
        };
        self.withdraw_approval();
        self.status = SessionStatus::Completed;
        self.effects.push(Effect::ResetCounters { user_id: user_id.clone(), method_ids: self.state.passed.clone() });
        self.effects.push(Effect::SetTemporaryLock { user_id: user_id.clone(), until: None });
        self.effects.push(Effect::ResetUnlockCount { user_id: user_id.clone() });
        let token = random_token(self.deps.random);
        let lifetime =
            i64::try_from(self.deps.config.authentication.session.max_lifetime_seconds * 1000).unwrap_or(i64::MAX);
        self.effects.push(Effect::CreateAuthSession(NewAuthSession {
            id: random_id(self.deps.random),
            token_hash: self.deps.key.hash_secret(SESSION_TOKEN_PURPOSE, &token),
            user_id,
            factors: self.state.passed.clone(),
            created_at: self.now,
            expires_at: self.now.saturating_add(lifetime),
        }));
        self.session_token = Some(token);
        self.audit("login.succeeded", "ok", serde_json::json!({ "factors": self.state.passed }));
        Outcome::Continue(None)
    }
}
