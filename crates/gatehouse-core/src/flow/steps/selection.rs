//! Selection (next step `SELECTION_REQUIRED`; `selection/options/retrieve`, `selection/options/{id}/select`):
//! a choice among options, each a list of steps run in place of the selection. An option is offered when the
//! user has what its factor steps need. Where the account must not show (stealth mode, or public self-service
//! before the identity is verified unless every restriction gives feedback anyway), every option is offered and
//! one the user lacks simply cannot pass.

use super::Enter;
use crate::config::{SelectionStep, Step};
use crate::flow::FlowKind;
use crate::flow::codes::{ErrorCode, FlowError, NextStep, Outcome};
use crate::flow::engine::{Ctx, EngineError};
use crate::flow::session::{Branch, Scratch};
use crate::ports::Enrolled;
use crate::user::User;

pub(crate) const KINDS: &[FlowKind] = &[FlowKind::Authentication, FlowKind::PublicSelfService];

/// What a user has enrolled or on record, as far as the steps of an option care.
struct Offerable<'u> {
    user: &'u User,
    enrolled: Enrolled,
}

impl Offerable<'_> {
    fn allows(&self, step: &Step) -> bool {
        match step {
            Step::Totp(_) => self.enrolled.totp,
            Step::Mtan(_) => self.user.context_item("phone").is_some(),
            Step::App2fa(_) => self.enrolled.device,
            Step::PasswordLetterOrder(cfg) => self.user.context_item(&cfg.address_item).is_some(),
            _ => true,
        }
    }
}

/// The option ids of `cfg` that `ctx`'s user is offered, in configuration order.
pub(crate) async fn available_options(ctx: &mut Ctx<'_>, cfg: &SelectionStep) -> Result<Vec<String>, EngineError> {
    let all: Vec<String> = cfg.options.iter().map(|o| o.id.clone()).collect();
    let account_hidden = ctx.kind().hides_locks()
        && !ctx.state.verified
        && !ctx.flow.restrictions.is_some_and(crate::config::Restrictions::all_feedback);
    if ctx.state.stealth || account_hidden {
        return Ok(all);
    }
    let Some(user) = ctx.load_user().await? else {
        return Ok(all);
    };
    let offerable = Offerable { user: &user, enrolled: ctx.deps.store.enrolled(&user.id).await? };
    let mut ids: Vec<String> =
        cfg.options.iter().filter(|o| o.steps.iter().all(|s| offerable.allows(s))).map(|o| o.id.clone()).collect();
    narrow_to_preferred(&user, &mut ids);
    Ok(ids)
}

/// A user whose record names a preferred method (`auth_method`) gets only that one, when it is on offer.
fn narrow_to_preferred(user: &User, ids: &mut Vec<String>) {
    if let Some(preferred) = user.auth_method.as_deref()
        && ids.iter().any(|id| id == preferred)
    {
        ids.retain(|id| id == preferred);
    }
}

impl Ctx<'_> {
    pub(crate) async fn enter_selection(&mut self, cfg: &SelectionStep) -> Result<Enter, EngineError> {
        let options = available_options(self, cfg).await?;
        match options.as_slice() {
            [] if cfg.required => Ok(Enter::Wait(self.terminate_with(ErrorCode::SecondFactorMissing))),
            [] => Ok(Enter::Done),
            [only] if cfg.auto_select_only_option => {
                let only = only.clone();
                self.enter_option(cfg, &only);
                Ok(Enter::Moved)
            }
            _ => {
                self.state.scratch = Scratch::Selection { options };
                Ok(Enter::Wait(Outcome::Continue(Some(NextStep::SelectionRequired))))
            }
        }
    }

    fn offered(&self) -> Vec<String> {
        match &self.state.scratch {
            Scratch::Selection { options } => options.clone(),
            _ => Vec::new(),
        }
    }

    pub(crate) fn retrieve_options(&mut self) -> Outcome {
        self.attributes.insert("options".into(), serde_json::json!(self.offered()));
        Outcome::Continue(Some(NextStep::SelectionRequired))
    }

    pub(crate) async fn select_option(&mut self, cfg: &SelectionStep, id: &str) -> Result<Outcome, EngineError> {
        if !self.offered().iter().any(|o| o == id) {
            return Ok(Outcome::Retry {
                next: NextStep::SelectionRequired,
                errors: vec![FlowError::new(ErrorCode::OptionNotAvailable)],
            });
        }
        self.audit("flow.option_selected", "ok", serde_json::json!({ "option": id }));
        self.enter_option(cfg, id);
        self.enter_current().await
    }

    fn enter_option(&mut self, cfg: &SelectionStep, id: &str) {
        if let Some(option) = cfg.options.iter().position(|o| o.id == id) {
            self.state.scratch = Scratch::None;
            self.state.branch = Some(Branch { option, step: 0 });
        }
    }
}
