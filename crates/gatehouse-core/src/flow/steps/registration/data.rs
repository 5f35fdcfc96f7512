//! User Data Registration: items the visitor fills in, call by call (`registration/data/`, partial updates),
//! `validate/` listing every issue, `continue` leaving the step. Next step `USER_DATA_REGISTRATION_POSSIBLE` once
//! every required item is there and the rules across items hold, `…_REQUIRED` before. With `captcha`, the first
//! data call carries a solved challenge (the answer to entering the step carries one in `captcha`).

use crate::config::{ItemRole, UserDataRegistrationStep};
use crate::flow::codes::{ErrorCode, FlowError, NextStep, Outcome};
use crate::flow::engine::{Ctx, EngineError};
use crate::flow::session::Scratch;
use crate::registration::{captcha, items};
use crate::user::normalize_login;

/// Items one data call may name.
const MAX_ITEMS_PER_CALL: usize = 64;

impl Ctx<'_> {
    pub(crate) fn enter_data(&mut self, cfg: &UserDataRegistrationStep) -> Result<Outcome, EngineError> {
        self.state.scratch = Scratch::Data { captcha_passed: !cfg.captcha };
        if cfg.captcha {
            self.offer_captcha();
        }
        self.show_items(cfg);
        Ok(Outcome::Continue(Some(self.data_next(cfg)?)))
    }

    /// `attributes.items`: what the step takes (`name`, `required`), so a client can build its form.
    fn show_items(&mut self, cfg: &UserDataRegistrationStep) {
        let items: Vec<serde_json::Value> =
            cfg.items.iter().map(|i| serde_json::json!({ "name": i.name, "required": i.required })).collect();
        self.attributes.insert("items".into(), serde_json::Value::Array(items));
    }

    fn offer_captcha(&mut self) {
        let c = captcha::create(self.deps.key, self.deps.random, &self.deps.config.self_registration.captcha, self.now);
        self.attributes.insert("captcha".into(), serde_json::to_value(c).unwrap_or_default());
    }

    fn captcha_passed(&self) -> bool {
        matches!(self.state.scratch, Scratch::Data { captcha_passed: true })
    }

    /// `…_POSSIBLE` when `continue` would pass the step's own rules.
    fn data_next(&self, cfg: &UserDataRegistrationStep) -> Result<NextStep, EngineError> {
        let ok = self.captcha_passed() && items::step_issues(cfg, &self.draft()?.items).is_empty();
        Ok(if ok { NextStep::UserDataRegistrationPossible } else { NextStep::UserDataRegistrationRequired })
    }

    pub(crate) fn new_captcha(&mut self, cfg: &UserDataRegistrationStep) -> Result<Outcome, EngineError> {
        if cfg.captcha && !self.captcha_passed() {
            self.offer_captcha();
        }
        self.show_items(cfg);
        Ok(Outcome::Continue(Some(self.data_next(cfg)?)))
    }

    /// Takes the values of one data call: all or nothing.
    pub(crate) async fn register_data(
        &mut self,
        cfg: &UserDataRegistrationStep,
        values: serde_json::Map<String, serde_json::Value>,
        solution: Option<String>,
    ) -> Result<Outcome, EngineError> {
        let next = self.data_next(cfg)?;
        if values.len() > MAX_ITEMS_PER_CALL {
            return Ok(Outcome::Retry { next, errors: vec![FlowError::at(ErrorCode::ItemUnknown, "")] });
        }
        let mut changes = Vec::new();
        let mut errors = Vec::new();
        for (name, value) in &values {
            let Some(item) = cfg.items.iter().find(|i| &i.name == name) else {
                errors.push(FlowError::item(ErrorCode::ItemUnknown, name, None));
                continue;
            };
            match value {
                serde_json::Value::Null => changes.push((name.clone(), None)),
                serde_json::Value::String(s) if s.trim().is_empty() => changes.push((name.clone(), None)),
                serde_json::Value::String(s) => match items::check_value(item, s) {
                    Ok(v) => changes.push((name.clone(), Some(v))),
                    Err(detail) => errors.push(FlowError::item(ErrorCode::ItemInvalid, name, Some(detail))),
                },
                _ => errors.push(FlowError::item(ErrorCode::ItemInvalid, name, Some("NOT_A_STRING"))),
            }
        }
        if !errors.is_empty() {
            self.audit("registration.data_rejected", "invalid", serde_json::json!({ "items": errors.len() }));
            return Ok(Outcome::Retry { next, errors });
        }
        // The CAPTCHA is checked once the data is fine, so a visitor who mistyped keeps an unspent solution.
        if !self.captcha_passed() {
            if let Some(error) = self.spend_captcha(solution.as_deref()).await? {
                return Ok(Outcome::Retry { next, errors: vec![error] });
            }
            self.state.scratch = Scratch::Data { captcha_passed: true };
        }
        let draft = self.draft_mut()?;
        for (name, value) in changes {
            match value {
                Some(v) => draft.items.insert(name, v),
                None => draft.items.remove(&name),
            };
        }
        self.audit("registration.data", "ok", serde_json::json!({ "items": values.keys().collect::<Vec<_>>() }));
        Ok(Outcome::Continue(Some(self.data_next(cfg)?)))
    }

    /// Verifies a CAPTCHA payload and spends it (once, across nodes); the error to answer if it does not pass.
    async fn spend_captcha(&mut self, solution: Option<&str>) -> Result<Option<FlowError>, EngineError> {
        let Some(payload) = solution else {
            return Ok(Some(FlowError::at(ErrorCode::CaptchaRequired, "/captcha")));
        };
        let verified = match captcha::verify(self.deps.key, payload, self.now) {
            Ok(v) => v,
            Err(e) => {
                self.audit("registration.captcha", "refused", serde_json::json!({ "reason": e.to_string() }));
                return Ok(Some(FlowError {
                    detail: Some(captcha_detail(e)),
                    ..FlowError::at(ErrorCode::CaptchaInvalid, "/captcha")
                }));
            }
        };
        let tag = self.deps.key.hash_secret("captcha-spent", &verified.challenge);
        if !self.deps.store.spend_captcha(&tag, verified.expires_at).await? {
            self.audit("registration.captcha", "replayed", serde_json::json!({}));
            return Ok(Some(FlowError {
                detail: Some("USED"),
                ..FlowError::at(ErrorCode::CaptchaInvalid, "/captcha")
            }));
        }
        Ok(None)
    }

    /// Every issue of the step: the CAPTCHA, required items, rules across items, names already taken.
    async fn data_issues(&self, cfg: &UserDataRegistrationStep) -> Result<Vec<FlowError>, EngineError> {
        let mut issues = Vec::new();
        if !self.captcha_passed() {
            issues.push(FlowError::at(ErrorCode::CaptchaRequired, "/captcha"));
        }
        let draft = self.draft()?;
        issues.extend(items::step_issues(cfg, &draft.items));
        let flow = self.registration_flow()?;
        // The item stealth mode protects is never reported taken: its verification hides that instead.
        let protected = flow.stealth_mode.then(|| flow.first_verified_item()).flatten();
        for item in &cfg.items {
            let Some(value) = draft.items.get(&item.name) else { continue };
            if protected == Some(item.name.as_str()) {
                continue;
            }
            let value = match item.role {
                ItemRole::Username | ItemRole::Alias => normalize_login(value),
                ItemRole::Context => value.clone(),
            };
            if self.item_taken(&item.name, &value).await? {
                issues.push(FlowError::item(ErrorCode::ItemNotUnique, &item.name, None));
            }
        }
        Ok(issues)
    }

    pub(crate) async fn validate_data(&mut self, cfg: &UserDataRegistrationStep) -> Result<Outcome, EngineError> {
        let issues = self.data_issues(cfg).await?;
        if issues.is_empty() {
            return Ok(Outcome::Continue(Some(NextStep::UserDataRegistrationPossible)));
        }
        Ok(Outcome::Retry { next: NextStep::UserDataRegistrationRequired, errors: issues })
    }

    pub(crate) async fn continue_data(&mut self, cfg: &UserDataRegistrationStep) -> Result<Outcome, EngineError> {
        let issues = self.data_issues(cfg).await?;
        if !issues.is_empty() {
            return Ok(Outcome::Retry { next: NextStep::UserDataRegistrationRequired, errors: issues });
        }
        let username = cfg.items.iter().find(|i| i.role == ItemRole::Username).map(|i| i.name.clone());
        if let Some(name) = username {
            let draft = self.draft_mut()?;
            draft.username = draft.items.remove(&name).map(|v| normalize_login(&v));
            draft.generated_username = false;
        }
        self.audit("registration.step_done", "ok", serde_json::json!({}));
        self.advance().await
    }
}

fn captcha_detail(e: captcha::CaptchaError) -> &'static str {
    match e {
        captcha::CaptchaError::Malformed => "MALFORMED",
        captcha::CaptchaError::Wrong => "WRONG",
        captcha::CaptchaError::Expired => "EXPIRED",
    }
}
