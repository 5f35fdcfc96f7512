use crate::audit::AuditEvent;
use crate::clock::{Clock, Millis};
use crate::config::{Config, FlowDef, Step};
use crate::crypto::{HashError, PasswordHashing, ServerKey};
use crate::flow::FlowKind;
use crate::flow::codes::{ErrorCode, FlowError, Outcome};
use crate::flow::restrictions::{self, Verdict};
use crate::flow::session::{FlowState, Scratch, SessionStatus};
use crate::flow::steps::{self, Enter};
use crate::messages::{TemplateError, Templates};
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
    pub templates: &'a Templates,
}

/// A call on a running flow, whatever its kind. Which calls a step accepts is the step's business; any other
/// call is `UNEXPECTED_CALL`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// `username` may be left out in a login a self-service flow initialized (the user is known).
    CheckPassword {
        username: Option<String>,
        password: String,
    },
    Identify {
        username: String,
    },
    CheckEmailOtp {
        otp: String,
    },
    ResendEmailOtp,
    CheckSmsOtp {
        otp: String,
    },
    ResendSmsOtp,
    CheckTotp {
        otp: String,
    },
    CheckMtan {
        otp: String,
    },
    ResendMtan,
    RetrieveOptions,
    SelectOption {
        id: String,
    },
    SetPassword {
        new_password: String,
    },
    PollApp,
    OfflineChallenge,
    OfflineCheck {
        otp: String,
    },
    CheckContinuationToken {
        token: String,
    },
    Acknowledge,
    CheckSecretAnswers {
        answers: Vec<String>,
    },
    /// Registration data: item names to values (a string sets, `null` or `""` removes), with the CAPTCHA payload
    /// where the step asks for one.
    RegisterData {
        values: serde_json::Map<String, serde_json::Value>,
        captcha: Option<String>,
    },
    /// Lists every issue that keeps the current data step from being left.
    ValidateRegistration,
    /// Leaves the current data step.
    ContinueRegistration,
    /// A fresh CAPTCHA challenge for the current data step.
    NewCaptcha,
    RegisterPassword {
        password: String,
    },
    /// Whether the authenticator enrolled during registration has activated.
    PollActivation,
    /// What the current step waits for, with what it shows (the number to match, the questions, the options),
    /// changing nothing: a page shown again after a reload.
    Describe,
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
    /// Extra `data.attributes` of the answer (options, the number to match, an offline challenge).
    pub attributes: serde_json::Map<String, serde_json::Value>,
    /// The cookie value of the new authenticated session, once an authentication flow succeeded.
    pub session_token: Option<String>,
    /// `meta.temporaryLockExpiry` of the answer.
    pub lock_expiry: Option<Millis>,
    /// A completed self-service flow configured to initialize the next login: whom it starts with.
    pub next_auth: Option<Seed>,
    /// The call identified or authenticated the user: the flow gets a new cookie token.
    pub renew_token: bool,
}

/// What a completed self-service flow tells the next login.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Seed {
    pub user_id: String,
    pub login: String,
    pub application: String,
    pub skip: crate::config::NextAuthSkip,
    pub validity_seconds: u64,
}

/// One call's working context: the flow, its state, and what the call changes.
pub(crate) struct Ctx<'a> {
    pub deps: &'a FlowDeps<'a>,
    pub flow: FlowDef<'a>,
    pub session_id: &'a str,
    pub ip: Option<&'a str>,
    pub now: Millis,
    pub state: FlowState,
    pub status: SessionStatus,
    pub effects: Vec<Effect>,
    pub attributes: serde_json::Map<String, serde_json::Value>,
    pub session_token: Option<String>,
    pub lock_expiry: Option<Millis>,
    pub next_auth: Option<Seed>,
    pub renew_token: bool,
    /// What a factor check did to its counter (refused, locked, throttled), told in the step's own audit event
    /// in public flows: an event of its own would be a write that only real users cost.
    pub counter_note: Option<serde_json::Value>,
    /// The user as this call last read it (found or not), for the call's later [`Ctx::load_user`]s instead of
    /// another read of the same row. A store call that may change a user's row forgets it
    /// ([`Ctx::forget_user`]); effects change nothing before the call ends.
    pub user_read: Option<Option<User>>,
}

/// Starts a login for a user a self-service flow just verified (reference §2.7): the subject is known, and with
/// `skip = password` the password step counts as done (not as a passed factor: its counter is not reset).
pub async fn start_seeded(
    deps: &FlowDeps<'_>,
    flow: FlowDef<'_>,
    session_id: &str,
    ip: Option<&str>,
    seed: &Seed,
) -> Result<Turn, EngineError> {
    let state = FlowState {
        application: Some(seed.application.clone()),
        subject: Some(crate::flow::session::Subject { login: seed.login.clone(), user_id: Some(seed.user_id.clone()) }),
        seeded: true,
        ..FlowState::default()
    };
    let mut ctx = Ctx::new(deps, flow, session_id, ip, state);
    let skip_password = seed.skip == crate::config::NextAuthSkip::Password;
    match flow.steps.first() {
        Some(Step::Username(_)) => ctx.state.step = 1,
        Some(Step::Password(_)) if skip_password => {
            ctx.state.step = 1;
            ctx.state.verified = true;
        }
        _ => {}
    }
    ctx.audit("flow.started", "seeded", serde_json::json!({ "application": seed.application }));
    let outcome = ctx.enter_current().await?;
    Ok(ctx.finish(outcome))
}

/// Starts a flow: enters its first step (running any non-interactive steps before it). With `first`, the call
/// that started the flow (a password check without a running login) is handled at once, in the same turn.
pub async fn start(
    deps: &FlowDeps<'_>,
    flow: FlowDef<'_>,
    session_id: &str,
    ip: Option<&str>,
    application: Option<&str>,
    first: Option<Action>,
) -> Result<Turn, EngineError> {
    let registration = (flow.kind == FlowKind::SelfRegistration)
        .then(|| crate::flow::session::Draft { user_id: random_id(deps.random), ..Default::default() });
    let state = FlowState { application: application.map(str::to_owned), registration, ..FlowState::default() };
    let mut ctx = Ctx::new(deps, flow, session_id, ip, state);
    ctx.audit("flow.started", "ok", serde_json::json!({ "application": application }));
    let outcome = ctx.enter_current().await?;
    let outcome = match first {
        Some(action) if ctx.status == SessionStatus::Active => ctx.dispatch(action).await?,
        _ => outcome,
    };
    Ok(ctx.finish(outcome))
}

/// Handles one call on a running flow.
pub async fn handle(
    deps: &FlowDeps<'_>,
    flow: FlowDef<'_>,
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
    let outcome = ctx.dispatch(action).await?;
    Ok(ctx.finish(outcome))
}

/// Whether `state` still fits `flow` (the configuration may have changed while the session ran).
pub fn fits(flow: FlowDef<'_>, state: &FlowState) -> bool {
    match (state.branch, flow.steps.get(state.step)) {
        (None, _) => state.step <= flow.steps.len(),
        (Some(b), Some(Step::Selection(s))) => s.options.get(b.option).is_some_and(|o| b.step < o.steps.len()),
        (Some(_), _) => false,
    }
}

impl<'a> Ctx<'a> {
    pub(crate) fn new(
        deps: &'a FlowDeps<'a>,
        flow: FlowDef<'a>,
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
            session_token: None,
            lock_expiry: None,
            next_auth: None,
            renew_token: false,
            counter_note: None,
            user_read: None,
        }
    }

    pub(crate) fn finish(self, outcome: Outcome) -> Turn {
        Turn {
            outcome,
            state: self.state,
            status: self.status,
            effects: self.effects,
            attributes: self.attributes,
            session_token: self.session_token,
            lock_expiry: self.lock_expiry,
            next_auth: self.next_auth,
            renew_token: self.renew_token,
        }
    }

    pub(crate) fn kind(&self) -> FlowKind {
        self.flow.kind
    }

    /// The step the flow waits at: a top-level step, or a step inside the chosen option of a selection.
    pub(crate) fn current(&self) -> Option<&'a Step> {
        let steps: &'a [Step] = self.flow.steps;
        let top = steps.get(self.state.step)?;
        match (self.state.branch, top) {
            (Some(b), Step::Selection(sel)) => sel.options.get(b.option).and_then(|o| o.steps.get(b.step)),
            _ => Some(top),
        }
    }

    async fn dispatch(&mut self, action: Action) -> Result<Outcome, EngineError> {
        let Some(step) = self.current() else {
            return Ok(Outcome::Unexpected);
        };
        if action == Action::Describe {
            return steps::describe(self, step);
        }
        steps::handle(self, step, action).await
    }

    /// Runs non-interactive steps from the current one on and stops at the first interactive step (its
    /// next-step code), at the end (no code: complete), or when a step ends the flow.
    pub(crate) async fn enter_current(&mut self) -> Result<Outcome, EngineError> {
        loop {
            self.leave_finished_branch();
            let Some(step) = self.current() else {
                return self.complete().await;
            };
            match steps::enter(self, step).await? {
                Enter::Wait(outcome) => return Ok(outcome),
                Enter::Done => self.step_forward(),
                Enter::Moved => {}
                Enter::End => return self.complete().await,
            }
        }
    }

    /// The current step is done: move to the next one and enter it.
    pub(crate) async fn advance(&mut self) -> Result<Outcome, EngineError> {
        self.step_forward();
        self.enter_current().await
    }

    fn step_forward(&mut self) {
        self.withdraw_approval();
        self.state.scratch = Scratch::None;
        match &mut self.state.branch {
            Some(b) => b.step += 1,
            None => self.state.step += 1,
        }
    }

    /// The last step of a chosen option was done: the flow goes on after the selection.
    fn leave_finished_branch(&mut self) {
        let Some(b) = self.state.branch else { return };
        let len = match self.flow.steps.get(self.state.step) {
            Some(Step::Selection(s)) => s.options.get(b.option).map_or(0, |o| o.steps.len()),
            _ => 0,
        };
        if b.step >= len {
            self.state.branch = None;
            self.state.step += 1;
        }
    }

    async fn complete(&mut self) -> Result<Outcome, EngineError> {
        self.withdraw_approval();
        if self.kind() == FlowKind::Authentication {
            return crate::flow::completion::authenticated(self).await;
        }
        self.status = SessionStatus::Completed;
        if let Some(user_id) = self.user_id() {
            let method_ids: Vec<String> = self.state.methods_passed.iter().map(|m| self.counter(m).method_id).collect();
            if !method_ids.is_empty() {
                self.effects.push(Effect::ResetCounters { user_id, method_ids });
            }
        }
        self.audit("flow.completed", "ok", serde_json::json!({}));
        self.next_auth = self.seed_for_next_login();
        Ok(Outcome::Continue(None))
    }

    pub(crate) fn terminate(&mut self, errors: Vec<FlowError>) -> Outcome {
        self.withdraw_approval();
        self.status = SessionStatus::Terminated;
        let codes: Vec<&str> = errors.iter().map(|e| e.code.as_str()).collect();
        self.audit("flow.terminated", "failed", serde_json::json!({ "codes": codes }));
        Outcome::Terminated(errors)
    }

    pub(crate) fn terminate_with(&mut self, code: ErrorCode) -> Outcome {
        self.terminate(vec![FlowError::new(code)])
    }

    /// A flow that ends withdraws its push request, so no device is asked about a finished flow.
    fn withdraw_approval(&mut self) {
        if let Scratch::App(app) = &mut self.state.scratch
            && let Some(id) = app.approval_id.take()
        {
            self.effects.push(Effect::CancelApproval { id, at: self.now });
        }
    }

    /// The flow now knows whom it is about: a new cookie token, so a token planted before is worthless.
    pub(crate) fn identified(&mut self) {
        self.renew_token = true;
    }

    /// The identified user's id, unless the flow runs in stealth mode.
    pub(crate) fn user_id(&self) -> Option<String> {
        if self.state.stealth {
            return None;
        }
        self.state.subject.as_ref().and_then(|s| s.user_id.clone())
    }

    /// The identified user. In stealth mode the same lookup runs for nobody, so both paths make the same
    /// store calls (equal work, not just equal answers).
    pub(crate) async fn load_user(&mut self) -> Result<Option<User>, EngineError> {
        let id = self.user_id();
        // Known or not (or hidden by stealth mode), a load after a read of this call reads nothing: equal work
        // either way. Only a subject that changed since (none of the flows does that) is read again.
        if let Some(read) = &self.user_read
            && (id.is_none() || read.as_ref().map(|u| u.id.as_str()) == id.as_deref())
        {
            return Ok(read.clone().filter(|_| id.is_some()));
        }
        let found = self.deps.store.get_user(id.as_deref().unwrap_or("")).await?.filter(|_| id.is_some());
        self.user_read = Some(found.clone());
        Ok(found)
    }

    /// After a store call that may have changed the user's row, the next load reads it again.
    pub(crate) fn forget_user(&mut self) {
        self.user_read = None;
    }

    /// The next login's seed, when this public self-service flow is configured to initialize it and verified a
    /// real user.
    fn seed_for_next_login(&self) -> Option<Seed> {
        let cfg = self.deps.config.public_self_service.flow(self.flow.id)?.initialize_next_auth_flow.as_ref()?;
        let user_id = self.user_id().filter(|_| self.state.verified && self.kind() == FlowKind::PublicSelfService)?;
        let login = self.state.subject.as_ref()?.login.clone();
        let auth = &self.deps.config.authentication;
        let application = cfg.application.clone().unwrap_or_else(|| auth.default_application.clone());
        Some(Seed { user_id, login, application, skip: cfg.skip, validity_seconds: cfg.validity_seconds })
    }

    /// A factor passed: it proves the identity, and its counter resets when the flow succeeds.
    pub(crate) fn factor_passed(&mut self, method_id: &str) {
        self.renew_token = true;
        self.state.verified = true;
        if !self.state.methods_passed.iter().any(|m| m == method_id) {
            self.state.methods_passed.push(method_id.to_owned());
        }
    }

    /// After an identity verification step every call re-checks the restrictions and reports violations.
    pub(crate) async fn restriction_violation(&mut self) -> Result<Option<ErrorCode>, EngineError> {
        let Some(r) = self.flow.restrictions else { return Ok(None) };
        let user = self.load_user().await?;
        let max_unlocks = self.deps.config.public_self_service.max_number_of_unlocks;
        Ok(match restrictions::evaluate(r, user.as_ref(), self.now, max_unlocks) {
            Verdict::Allowed => None,
            Verdict::Refused { code, .. } => Some(code),
        })
    }

    pub(crate) fn audit(&mut self, event: &str, outcome: &str, details: serde_json::Value) {
        let ev = self.audit_event(event, outcome, details);
        self.effects.push(Effect::Audit(ev));
    }

    /// The audit event `audit` would write, for a store call that writes it itself.
    pub(crate) fn audit_event(&mut self, event: &str, outcome: &str, mut details: serde_json::Value) -> AuditEvent {
        if let (Some(note), Some(map)) = (self.counter_note.take(), details.as_object_mut()) {
            map.insert("counter".into(), note);
        }
        let subject = self.state.subject.as_ref();
        // A name that matches no user is often a password typed into the wrong field: the trail keeps only a
        // keyed hash of it (enough to see repeats), never the text.
        let (actor, username) = match subject {
            Some(s) if s.user_id.is_some() => (format!("user:{}", s.login), Some(s.login.clone())),
            Some(s) => {
                let tag = self.deps.key.hash_secret("audit-unknown-login", &s.login);
                ("anonymous".to_owned(), Some(format!("unknown:{}", &tag[..16])))
            }
            None => ("anonymous".to_owned(), None),
        };
        AuditEvent {
            id: random_id(self.deps.random),
            at: self.now,
            event: event.to_owned(),
            actor,
            user_id: subject.and_then(|s| s.user_id.clone()),
            username,
            flow_id: Some(self.flow.id.to_owned()),
            session_id: Some(self.session_id.to_owned()),
            ip: self.ip.map(str::to_owned),
            outcome: outcome.to_owned(),
            details,
        }
    }
}
