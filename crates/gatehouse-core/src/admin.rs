//! User administration: what `gatehouse user …` (and the admin API) do, in one place.

use std::collections::BTreeMap;

use crate::audit::AuditEvent;
use crate::clock::{Clock, Millis};
use crate::config::PasswordPolicyConfig;
use crate::crypto::{HashError, PasswordHashing};
use crate::password_policy;
use crate::ports::{Effect, Store, StoreError};
use crate::random::{Random, random_id};
use crate::user::{NewUser, User, lock_reason, normalize_login};

#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    #[error("no user `{0}`")]
    NotFound(String),
    #[error("{field}: {message}")]
    Invalid { field: &'static str, message: String },
    #[error("password violates the policy: {}", .0.join(", "))]
    Policy(Vec<&'static str>),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Hashing(#[from] HashError),
    #[error(transparent)]
    Template(#[from] crate::messages::TemplateError),
}

/// A password for a new user: typed (hashed here) or imported as an existing PHC/bcrypt string.
#[derive(Debug, Clone)]
pub enum InitialPassword {
    None,
    Plain(String),
    Hash(String),
}

#[derive(Debug, Clone)]
pub struct AddUser {
    pub username: String,
    pub email: Option<String>,
    pub phone: Option<String>,
    pub aliases: Vec<String>,
    pub roles: Vec<String>,
    pub context: BTreeMap<String, String>,
    pub password: InitialPassword,
}

pub struct UserAdmin<'a> {
    pub store: &'a dyn Store,
    /// `users.email_as_alias`: the email is also a login name.
    pub email_as_alias: bool,
    pub hasher: &'a dyn PasswordHashing,
    pub policy: &'a PasswordPolicyConfig,
    pub clock: &'a dyn Clock,
    pub random: &'a dyn Random,
    /// Who acts, for the audit trail (`admin:cli`, `admin:token:<name>`).
    pub actor: String,
}

fn invalid<T>(field: &'static str, message: impl Into<String>) -> Result<T, AdminError> {
    Err(AdminError::Invalid { field, message: message.into() })
}

pub fn validate_username(name: &str) -> Result<String, AdminError> {
    let n = normalize_login(name);
    if n.is_empty() || n.chars().count() > 64 {
        return invalid("username", "must be 1–64 characters");
    }
    if !n.chars().all(|c| c.is_alphanumeric() || matches!(c, '.' | '_' | '-' | '@' | '+')) {
        return invalid("username", "may contain letters, digits and . _ - @ +");
    }
    Ok(n)
}

pub fn validate_email(email: &str) -> Result<String, AdminError> {
    let e = email.trim();
    if e.len() > 254 || e.parse::<lettre::Address>().is_err() {
        return invalid("email", format!("`{e}` is not an email address"));
    }
    Ok(e.to_owned())
}

pub fn validate_phone(phone: &str) -> Result<String, AdminError> {
    let p: String = phone.chars().filter(|c| !matches!(c, ' ' | '-' | '(' | ')')).collect();
    let digits = p.strip_prefix('+').unwrap_or("");
    if !(8..=15).contains(&digits.len()) || !digits.chars().all(|c| c.is_ascii_digit()) {
        return invalid("phone", "must be in international format, e.g. +41791234567");
    }
    Ok(p)
}

impl UserAdmin<'_> {
    /// An audit event by this administrator about `user`.
    pub fn audit_event(&self, event: &str, user: &User, details: serde_json::Value) -> AuditEvent {
        self.event(event, user, "ok", details)
    }

    fn event(&self, event: &str, user: &User, outcome: &str, details: serde_json::Value) -> AuditEvent {
        AuditEvent {
            id: random_id(self.random),
            at: self.clock.now_ms(),
            event: event.to_owned(),
            actor: self.actor.clone(),
            user_id: Some(user.id.clone()),
            username: Some(user.username.clone()),
            flow_id: None,
            session_id: None,
            ip: None,
            outcome: outcome.to_owned(),
            details,
        }
    }

    /// Mails `login` a password-reset link into continuation flow `flow` (default: the first flow that starts
    /// with flow-continuation), valid for `validity_seconds`. Returns the flow the link leads to.
    pub async fn send_reset_link(
        &self,
        login: &str,
        mail: &crate::flow::continuation::LinkMail<'_>,
        flow: Option<&str>,
        validity_seconds: u64,
    ) -> Result<String, AdminError> {
        let user = self.find(login).await?;
        let flows = crate::flow::continuation::continuation_flows(mail.config);
        let flow = match flow {
            Some(f) if flows.contains(&f) => f.to_owned(),
            Some(f) => return invalid("flow", format!("`{f}` is no flow that starts with flow-continuation")),
            None => match flows.first() {
                Some(f) => (*f).to_owned(),
                None => return invalid("flow", "no public self-service flow starts with flow-continuation"),
            },
        };
        let Some(to) = user.context_item("email").map(str::to_owned) else {
            return invalid("email", format!("`{}` has no email address", user.username));
        };
        let lang = crate::messages::language_for(&user, &mail.config.messaging.default_language);
        let recipient =
            crate::flow::continuation::Recipient { user_id: &user.id, username: &user.username, to: Some(&to) };
        let mut effects =
            crate::flow::continuation::link_effects(mail, &recipient, &flow, "reset-link", validity_seconds, &lang)?;
        effects.push(Effect::Audit(self.audit_event("link.sent", &user, serde_json::json!({ "target_flow": flow }))));
        self.store.apply(&effects).await?;
        Ok(flow)
    }

    pub async fn find(&self, login: &str) -> Result<User, AdminError> {
        self.store
            .find_user_by_login(&normalize_login(login))
            .await?
            .ok_or_else(|| AdminError::NotFound(login.to_owned()))
    }

    pub async fn list(&self) -> Result<Vec<User>, AdminError> {
        Ok(self.store.list_users().await?)
    }

    /// One page of users (see [`crate::user::UserPage`]).
    pub async fn page(&self, page: &crate::user::UserPage) -> Result<crate::user::FoundUsers, AdminError> {
        Ok(self.store.users_page(page).await?)
    }

    /// Resets one failed-attempt counter (without unlocking).
    pub async fn reset_counter(&self, login: &str, method_id: &str) -> Result<User, AdminError> {
        let user = self.find(login).await?;
        let audit = self.event("counter.reset", &user, "ok", serde_json::json!({ "method": method_id }));
        let effect = Effect::ResetCounters { user_id: user.id.clone(), method_ids: vec![method_id.to_owned()] };
        self.store.apply(&[effect, Effect::Audit(audit)]).await?;
        self.find(login).await
    }

    pub async fn add(&self, req: AddUser) -> Result<User, AdminError> {
        let username = validate_username(&req.username)?;
        let mut context = req.context;
        if let Some(email) = &req.email {
            context.insert("email".into(), validate_email(email)?);
        }
        if let Some(phone) = &req.phone {
            context.insert("phone".into(), validate_phone(phone)?);
        }
        let mut aliases = Vec::new();
        let email_alias = context.get("email").filter(|_| self.email_as_alias).map(|e| normalize_login(e));
        for alias in req.aliases.iter().chain(email_alias.as_ref()) {
            let a = normalize_login(alias);
            if a.is_empty() || a == username {
                return invalid("alias", format!("`{alias}` is empty or equal to the username"));
            }
            if !aliases.contains(&a) {
                aliases.push(a);
            }
        }
        for role in &req.roles {
            if role.trim().is_empty() {
                return invalid("role", "must not be empty");
            }
        }
        let password_hash = match req.password {
            InitialPassword::None => None,
            InitialPassword::Plain(pw) => {
                let violations = password_policy::check(self.policy, &pw, &username, &[username.as_str()]);
                if !violations.is_empty() {
                    return Err(AdminError::Policy(violations));
                }
                Some(self.hasher.hash(pw).await?)
            }
            InitialPassword::Hash(h) => {
                // Refuse what could never verify, instead of storing a dead credential.
                match self.hasher.verify(String::new(), h.clone()).await {
                    Err(HashError::UnsupportedHash(why)) => return invalid("password-hash", why),
                    Err(e) => return Err(e.into()),
                    Ok(_) => Some(h),
                }
            }
        };
        let now = self.clock.now_ms();
        let new = NewUser {
            id: random_id(self.random),
            username,
            aliases,
            context,
            roles: req.roles,
            password_hash,
            created_at: now,
            ..NewUser::default()
        };
        let placeholder = User {
            id: new.id.clone(),
            username: new.username.clone(),
            aliases: vec![],
            context: BTreeMap::new(),
            roles: vec![],
            password_hash: None,
            valid_from: None,
            valid_until: None,
            locked: false,
            lock_reason: None,
            locked_at: None,
            temp_locked_until: None,
            failed_attempts: BTreeMap::new(),
            unlock_count: 0,
            auth_method: None,
            password_changed_at: None,
            created_at: now,
            updated_at: now,
        };
        let audit = self.event("user.created", &placeholder, "ok", serde_json::json!({ "roles": new.roles }));
        Ok(self.store.create_user(&new, &audit).await?)
    }

    pub async fn lock(&self, login: &str, reason: Option<&str>) -> Result<User, AdminError> {
        let user = self.find(login).await?;
        let reason = reason.map_or_else(|| lock_reason::INITIATED_BY_ADMIN.to_owned(), str::to_owned);
        if reason.trim().is_empty() || reason.len() > 100 {
            return invalid("reason", "must be 1–100 characters");
        }
        let at = self.clock.now_ms();
        let audit = self.event("user.locked", &user, "ok", serde_json::json!({ "reason": reason }));
        self.store
            .apply(&[Effect::Lock { user_id: user.id.clone(), reason, at, replace: true }, Effect::Audit(audit)])
            .await?;
        self.find(login).await
    }

    /// Unlocks and resets every failed-attempt counter.
    pub async fn unlock(&self, login: &str) -> Result<User, AdminError> {
        let user = self.find(login).await?;
        let audit = self.event(
            "user.unlocked",
            &user,
            "ok",
            serde_json::json!({ "was_locked": user.locked, "lock_reason": user.lock_reason, "counters": user.failed_attempts }),
        );
        let at = self.clock.now_ms();
        self.store.apply(&[Effect::Unlock { user_id: user.id.clone(), at }, Effect::Audit(audit)]).await?;
        self.find(login).await
    }

    pub async fn set_password(&self, login: &str, password: String) -> Result<(), AdminError> {
        let user = self.find(login).await?;
        let violations = password_policy::check(self.policy, &password, &user.username, &[user.username.as_str()]);
        if !violations.is_empty() {
            return Err(AdminError::Policy(violations));
        }
        let password_hash = self.hasher.hash(password).await?;
        let audit = self.event("password.changed", &user, "ok", serde_json::json!({ "by": "admin" }));
        let at = self.clock.now_ms();
        self.store
            .apply(&[Effect::SetPassword { user_id: user.id.clone(), password_hash, at }, Effect::Audit(audit)])
            .await?;
        Ok(())
    }

    /// Accounts a registration stored but never made usable: locked since the moment they were created, with one
    /// of `reasons` (the registration flows' initial lock reasons), created before `before`. Read page by page.
    pub async fn abandoned_registrations(&self, reasons: &[String], before: Millis) -> Result<Vec<User>, AdminError> {
        const PAGE: u32 = 1000;
        let mut found = Vec::new();
        let mut after = None;
        loop {
            let page = self.store.users_page(&crate::user::UserPage { search: None, after, limit: PAGE }).await?;
            after = page.next_cursor;
            found.extend(page.users.into_iter().filter(|u| {
                u.locked
                    && u.locked_at == Some(u.created_at)
                    && u.created_at < before
                    && u.lock_reason.as_ref().is_some_and(|r| reasons.contains(r))
            }));
            if after.is_none() {
                return Ok(found);
            }
        }
    }

    /// Deletes what [`Self::abandoned_registrations`] lists; the accounts deleted.
    pub async fn purge_abandoned_registrations(
        &self,
        reasons: &[String],
        before: Millis,
    ) -> Result<Vec<User>, AdminError> {
        let users = self.abandoned_registrations(reasons, before).await?;
        for user in &users {
            let audit = self.event("user.deleted", user, "ok", serde_json::json!({ "why": "abandoned_registration" }));
            self.store.apply(&[Effect::DeleteUser { user_id: user.id.clone() }, Effect::Audit(audit)]).await?;
        }
        Ok(users)
    }

    pub async fn delete(&self, login: &str) -> Result<(), AdminError> {
        let user = self.find(login).await?;
        let audit = self.event("user.deleted", &user, "ok", serde_json::json!({}));
        self.store.apply(&[Effect::DeleteUser { user_id: user.id.clone() }, Effect::Audit(audit)]).await?;
        Ok(())
    }
}
