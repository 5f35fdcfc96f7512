//! User Persisting (non-interactive). `insert` creates the account from the draft in one transaction — user,
//! login names (username and aliases, unique by the database's constraint), unique items, the audit event —
//! locked with the flow's initial lock reason unless a `user-unlock` step ran. `update` writes what the steps
//! since changed to that account, with the flow session, in one transaction.

use crate::config::{ItemRole, PersistStrategy, UserPersistingStep};
use crate::flow::codes::ErrorCode;
use crate::flow::engine::{Ctx, EngineError};
use crate::flow::session::Subject;
use crate::flow::steps::Enter;
use crate::ports::{Effect, StoreError};
use crate::registration::username;
use crate::user::{NewUser, normalize_login};

/// Inserts retried with a newly generated username after a collision.
const INSERT_TRIES: usize = 4;

impl Ctx<'_> {
    pub(crate) async fn persist(&mut self, cfg: &UserPersistingStep) -> Result<Enter, EngineError> {
        match cfg.strategy {
            PersistStrategy::Insert => self.persist_insert().await,
            PersistStrategy::Update => self.persist_update(),
        }
    }

    /// The account as the draft describes it.
    fn new_user(&self) -> Result<NewUser, EngineError> {
        let flow = self.registration_flow()?;
        let draft = self.draft()?;
        let username = draft.username.clone().ok_or(EngineError::Inconsistent("persisting without a username"))?;
        let mut new = NewUser {
            id: draft.user_id.clone(),
            username,
            roles: draft.roles.clone(),
            password_hash: draft.password_hash.clone(),
            created_at: self.now,
            lock_reason: (!draft.unlocked).then(|| flow.initial_lock_reason.clone()),
            auth_method: draft.auth_method.clone(),
            ..NewUser::default()
        };
        for (name, value) in &draft.items {
            if self.item_role(name) == ItemRole::Alias {
                new.aliases.push(normalize_login(value));
            }
            if flow.additional_unique_items.contains(name) {
                new.unique_items.push((name.clone(), value.clone()));
            }
            new.context.insert(name.clone(), value.clone());
        }
        Ok(new)
    }

    async fn persist_insert(&mut self) -> Result<Enter, EngineError> {
        let mut new = self.new_user()?;
        let generator = self.flow.steps.iter().find_map(|s| match s {
            crate::config::Step::UsernameGeneration(g) if self.draft().is_ok_and(|d| d.generated_username) => {
                Some(g.generator.clone())
            }
            _ => None,
        });
        let mut tries = 0;
        loop {
            tries += 1;
            let audit = self.audit_event(
                "registration.persisted",
                "ok",
                serde_json::json!({ "locked": new.lock_reason.is_some() }),
            );
            let audit = crate::audit::AuditEvent { user_id: Some(new.id.clone()), ..audit };
            let created = self.deps.store.create_user(&new, &audit).await;
            self.forget_user();
            match created {
                Ok(_) => break,
                // A name taken meanwhile: the account may be this flow's own, stored by a call whose answer was
                // lost; a generated name is drawn again; anything else is a conflict the visitor is told about.
                Err(StoreError::UsernameTaken(_) | StoreError::AliasTaken(_) | StoreError::ItemTaken(_))
                    if self.deps.store.get_user(&new.id).await?.is_some() =>
                {
                    break;
                }
                Err(StoreError::UsernameTaken(_)) if generator.is_some() && tries < INSERT_TRIES => {
                    let fresh = generator.as_ref().and_then(|g| username::generate(g, self.deps.random));
                    new.username = fresh.map(|n| normalize_login(&n)).unwrap_or_default();
                }
                Err(StoreError::UsernameTaken(_) | StoreError::AliasTaken(_) | StoreError::ItemTaken(_)) => {
                    self.audit("registration.conflict", "taken", serde_json::json!({}));
                    return Ok(Enter::Wait(self.terminate_with(ErrorCode::RegistrationConflict)));
                }
                Err(e) => return Err(e.into()),
            }
        }
        let draft = self.draft_mut()?;
        draft.username = Some(new.username.clone());
        draft.persisted = true;
        self.state.subject = Some(Subject { login: new.username.clone(), user_id: Some(new.id.clone()) });
        self.state.verified = true;
        Ok(Enter::Done)
    }

    fn persist_update(&mut self) -> Result<Enter, EngineError> {
        let new = self.new_user()?;
        if !self.draft()?.persisted {
            return Err(EngineError::Inconsistent("an update before the account was inserted"));
        }
        let (user_id, at) = (new.id.clone(), self.now);
        for (key, value) in new.context {
            self.effects.push(Effect::SetContextItem { user_id: user_id.clone(), key, value: Some(value), at });
        }
        if let Some(password_hash) = new.password_hash {
            self.effects.push(Effect::SetPassword { user_id: user_id.clone(), password_hash, at });
        }
        self.effects.push(Effect::SetRoles { user_id: user_id.clone(), roles: new.roles, at });
        self.effects.push(Effect::SetAuthMethod { user_id: user_id.clone(), method: new.auth_method, at });
        if new.lock_reason.is_none() {
            self.effects.push(Effect::Unlock { user_id, at });
        }
        self.audit("registration.updated", "ok", serde_json::json!({ "locked": new.lock_reason.is_some() }));
        Ok(Enter::Done)
    }
}
