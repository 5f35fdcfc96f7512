use crate::audit::AuditEvent;
use crate::clock::{Clock, Millis};
use crate::config::{Config, PssStep, PublicSelfServiceFlow};
use crate::crypto::{HashError, PasswordHashing, ServerKey};
use crate::flow::codes::{ErrorCode, FlowError, NextStep, Outcome};
use crate::flow::restrictions::{self, Verdict};
use crate::flow::session::{FlowState, Scratch, SessionStatus};
use crate::messages::TemplateError;
use crate::ports::{Effect, Store, StoreError};
use crate::random::{Random, random_id};
use crate::user::User;

/// What the engine needs from the outside.
pub struct FlowDeps<'a> {
    pub config: &'a Config,
    pub store: &'a dyn Store,
    pub hasher: &'a dyn PasswordHashing,
    pub clock: &'a dyn Clock,
    pub random: &'a dyn Random,
    pub key: &'a ServerKey,
}

/// A call on a public self-service flow.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    Identify { username: String },
    CheckEmailOtp { otp: String },
    ResendEmailOtp,
    SetPassword { new_password: String },
    PollApp,
    OfflineChallenge,
    OfflineCheck { otp: String },
}

#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Hashing(#[from] HashError),
    #[error(transparent)]
    Template(#[from] TemplateError),
    #[error("flow state does not fit the flow configuration: {0}")]
    Inconsistent(&'static str),
}

/// The result of one call: the answer, the new state and what to write with it.
#[derive(Debug)]
pub struct Turn {
    pub outcome: Outcome,
    pub state: FlowState,
    pub status: SessionStatus,
    pub effects: Vec<Effect>,
    /// Extra `data.attributes` of the answer (the number to match, an offline challenge).
    pub attributes: serde_json::Map<String, serde_json::Value>,
}

pub(super) struct Ctx<'a> {
    pub deps: &'a FlowDeps<'a>,
    pub flow: &'a PublicSelfServiceFlow,
    pub session_id: &'a str,
    pub ip: Option<&'a str>,
    pub now: Millis,
    pub state: FlowState,
    pub status: SessionStatus,
    pub effects: Vec<Effect>,
    pub attributes: serde_json::Map<String, serde_json::Value>,
}

/// Starts a flow: enters its first step (running any non-interactive steps before it).
pub async fn start(
    deps: &FlowDeps<'_>,
    flow: &PublicSelfServiceFlow,
    session_id: &str,
    ip: Option<&str>,
) -> Result<Turn, EngineError> {
    let mut ctx = Ctx::new(deps, flow, session_id, ip, FlowState::default());
    ctx.audit("flow.started", "ok", serde_json::json!({}));
    let outcome = ctx.enter_current().await?;
    Ok(ctx.finish(outcome))
}

/// Handles one call on a running flow.
pub async fn handle(
    deps: &FlowDeps<'_>,
    flow: &PublicSelfServiceFlow,
    session_id: &str,
    ip: Option<&str>,
    state: FlowState,
    action: Action,
) -> Result<Turn, EngineError> {
    let mut ctx = Ctx::new(deps, flow, session_id, ip, state);
    if ctx.state.verified
        && let Some(code) = ctx.restriction_violation().await?
    {
        ctx.audit("flow.restricted", code.as_str(), serde_json::json!({}));
        let outcome = ctx.terminate(vec![FlowError::new(code)]);
        return Ok(ctx.finish(outcome));
    }
    let step = flow.steps.get(ctx.state.step).ok_or(EngineError::Inconsistent("step index past the end"))?;
    let outcome = match (step, action) {
        (PssStep::UserIdentification(_), Action::Identify { username }) => ctx.identify(&username).await?,
        (PssStep::EmailIdentityVerification(cfg), Action::CheckEmailOtp { otp }) => {
            ctx.check_email_otp(cfg, &otp).await?
        }
        (PssStep::EmailIdentityVerification(cfg), Action::ResendEmailOtp) => ctx.resend_email_otp(cfg).await?,
        (PssStep::SetPassword(cfg), Action::SetPassword { new_password }) => {
            ctx.set_password(cfg, new_password).await?
        }
        (PssStep::App2faApproval(cfg), Action::PollApp) => ctx.poll_app(cfg).await?,
        (PssStep::App2faApproval(cfg), Action::OfflineChallenge) => ctx.offline_challenge(cfg).await?,
        (PssStep::App2faApproval(_), Action::OfflineCheck { otp }) => ctx.offline_check(&otp).await?,
        _ => Outcome::Unexpected,
    };
    Ok(ctx.finish(outcome))
}

impl<'a> Ctx<'a> {
    fn new(
        deps: &'a FlowDeps<'a>,
        flow: &'a PublicSelfServiceFlow,
        session_id: &'a str,
        ip: Option<&'a str>,
        state: FlowState,
    ) -> Self {
        Self {
            deps,
            flow,
            session_id,
            ip,
            now: deps.clock.now_ms(),
            state,
            status: SessionStatus::Active,
            effects: Vec::new(),
            attributes: serde_json::Map::new(),
        }
    }

    fn finish(self, outcome: Outcome) -> Turn {
        Turn { outcome, state: self.state, status: self.status, effects: self.effects, attributes: self.attributes }
    }

    /// Runs non-interactive steps from the current one on and stops at the first interactive step (its
    /// next-step code), at the end (no code: complete), or when a non-interactive step ends the flow.
    pub(super) async fn enter_current(&mut self) -> Result<Outcome, EngineError> {
        loop {
            let Some(step) = self.flow.steps.get(self.state.step) else {
                self.complete();
                return Ok(Outcome::Continue(None));
            };
            let next = match step {
                PssStep::UserIdentification(_) => NextStep::UsernameRequired,
                PssStep::EmailIdentityVerification(cfg) => {
                    self.enter_email_otp(cfg).await?;
                    NextStep::EmailOtpRequired
                }
                PssStep::SetPassword(_) => NextStep::NewPasswordRequired,
                PssStep::App2faApproval(cfg) => return self.enter_app(cfg).await,
                PssStep::EmailNotification(cfg) => {
                    self.send_notification(cfg).await?;
                    self.state.step += 1;
                    continue;
                }
                PssStep::UnlockUser(cfg) => {
                    if let Some(code) = self.unlock_user(cfg).await? {
                        return Ok(self.terminate(vec![FlowError::new(code)]));
                    }
                    self.state.step += 1;
                    continue;
                }
            };
            return Ok(Outcome::Continue(Some(next)));
        }
    }

    /// The current step is done: move to the next one.
    pub(super) async fn advance(&mut self) -> Result<Outcome, EngineError> {
        self.state.step += 1;
        self.state.scratch = Scratch::None;
        self.enter_current().await
    }

    fn complete(&mut self) {
        self.status = SessionStatus::Completed;
        if let Some(user_id) = self.user_id() {
            let method_ids: Vec<String> = self.state.methods_passed.iter().cloned().collect();
            if !method_ids.is_empty() {
                self.effects.push(Effect::ResetCounters { user_id, method_ids });
            }
        }
        self.audit("flow.completed", "ok", serde_json::json!({}));
    }

    pub(super) fn terminate(&mut self, errors: Vec<FlowError>) -> Outcome {
        self.status = SessionStatus::Terminated;
        let codes: Vec<&str> = errors.iter().map(|e| e.code.as_str()).collect();
        self.audit("flow.terminated", "failed", serde_json::json!({ "codes": codes }));
        Outcome::Terminated(errors)
    }

    /// The identified user's id, unless the flow runs in stealth mode.
    pub(super) fn user_id(&self) -> Option<String> {
        if self.state.stealth {
            return None;
        }
        self.state.subject.as_ref().and_then(|s| s.user_id.clone())
    }

    pub(super) async fn load_user(&self) -> Result<Option<User>, EngineError> {
        match self.user_id() {
            Some(id) => Ok(self.deps.store.get_user(&id).await?),
            None => Ok(None),
        }
    }

    /// After an identity verification step every call re-checks the restrictions and reports violations.
    pub(super) async fn restriction_violation(&self) -> Result<Option<ErrorCode>, EngineError> {
        let user = self.load_user().await?;
        Ok(
            match restrictions::evaluate(
                &self.flow.restrictions,
                user.as_ref(),
                self.now,
                self.deps.config.public_self_service.max_number_of_unlocks,
            ) {
                Verdict::Allowed => None,
                Verdict::Refused { code, .. } => Some(code),
            },
        )
    }

    pub(super) fn audit(&mut self, event: &str, outcome: &str, details: serde_json::Value) {
        let subject = self.state.subject.as_ref();
        let ev = AuditEvent {
            id: random_id(self.deps.random),
            at: self.now,
            event: event.to_owned(),
            actor: subject.map_or_else(|| "anonymous".to_owned(), |s| format!("user:{}", s.login)),
            user_id: subject.and_then(|s| s.user_id.clone()),
            username: subject.map(|s| s.login.clone()),
            flow_id: Some(self.flow.id.clone()),
            session_id: Some(self.session_id.to_owned()),
            ip: self.ip.map(str::to_owned),
            outcome: outcome.to_owned(),
            details,
        };
        self.effects.push(Effect::Audit(ev));
    }
}
