//! Third-party applications that add Gatehouse's authenticator to their own login (the v1 API, UNLOQ's shapes):
//! registering them with an API key (shown once, stored as a keyed hash; rotate, revoke), and the people each
//! one enrolled. A person is the Gatehouse user whose login name (username or alias) is the email, or else a
//! profile scoped to the application — so an application never reaches another's profiles, and sees only the
//! enrollments it made.

use crate::authenticator_service::{Activation, ActivationError, start_activation};
use crate::clock::{Clock, Millis, format_timestamp};
use crate::config::Config;
use crate::crypto::ServerKey;
use crate::ports::{Application, Approval, ApprovalStatus, Store, StoreError};
use crate::random::{Random, random_id, random_token};
use crate::user::{NewUser, User, normalize_login};

mod widget;
pub use widget::{TICKET_LIFETIME_MS, WidgetTicket, callback_with_token};

/// Keyed-hash purpose of application API keys.
pub const KEY_PURPOSE: &str = "app-api-key";
/// What an enrollment call leads to.
#[derive(Debug)]
pub enum Enrollment {
    /// The person has a device already and is enrolled for the application.
    Done { existed: bool },
    /// A device to activate (QR code) for the application's profile of the address.
    Activate { existed: bool, activation: Activation },
    /// A Gatehouse user with a device: they approve the application on it.
    Consent(Box<User>),
}

/// What a device code turned out to be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CodeCheck {
    Right,
    Wrong,
    /// The counter is used up (locked or blocked): not looked at.
    Exhausted,
}

/// Keyed-hash purpose of access tokens.
const TOKEN_PURPOSE: &str = "app-access-token";
/// An access token works for a minute.
pub const TOKEN_LIFETIME_MS: i64 = 60_000;

/// Every API key starts with this, so a leaked one is recognised (secret scanners, logs).
pub const KEY_PREFIX: &str = "gh_app_";

#[derive(Debug, thiserror::Error)]
pub enum AppError {
    #[error("{field}: {message}")]
    Invalid { field: &'static str, message: String },
    #[error("an application named `{0}` exists")]
    NameTaken(String),
    #[error("no application `{0}`")]
    NotFound(String),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("{0}")]
    Internal(String),
}

impl From<ActivationError> for AppError {
    fn from(e: ActivationError) -> Self {
        match e {
            ActivationError::Store(s) => Self::Store(s),
            ActivationError::Qr(q) => Self::Internal(q.to_string()),
        }
    }
}

/// `scheme://host[:port]`: https, or http towards the local machine (development).
pub fn check_origin(origin: &str) -> Result<String, AppError> {
    let invalid = |m: &str| AppError::Invalid { field: "origin", message: m.to_owned() };
    let origin = origin.trim().trim_end_matches('/');
    let (scheme, rest) = origin.split_once("://").ok_or_else(|| invalid("must be scheme://host[:port]"))?;
    let host = rest.rsplit_once(':').map_or(rest, |(h, port)| if port.parse::<u16>().is_ok() { h } else { rest });
    let local = matches!(host, "localhost" | "127.0.0.1" | "[::1]");
    let valid_host = !host.is_empty() && host.chars().all(|c| c.is_ascii_alphanumeric() || "-.[]:".contains(c));
    if !valid_host || rest.contains('/') || rest.contains('?') || rest.contains('#') || rest.contains('@') {
        return Err(invalid("must be scheme://host[:port] with no path"));
    }
    match scheme {
        "https" => Ok(origin.to_ascii_lowercase()),
        "http" if local => Ok(origin.to_ascii_lowercase()),
        _ => Err(invalid("must be https:// (http:// only for localhost)")),
    }
}

/// The applications of the v1 API.
pub struct Applications<'a> {
    pub store: &'a dyn Store,
    pub key: &'a ServerKey,
    pub random: &'a dyn Random,
    pub clock: &'a dyn Clock,
    pub config: &'a Config,
}

impl Applications<'_> {
    fn new_key(&self) -> (String, String) {
        let api_key = format!("{KEY_PREFIX}{}", random_token(self.random));
        let hash = self.key.hash_secret(KEY_PURPOSE, &api_key);
        (api_key, hash)
    }

    /// Registers an application on behalf of `actor` (audited); its API key (shown once).
    pub async fn create(
        &self,
        actor: &str,
        name: &str,
        origin: &str,
        callback_url: Option<&str>,
    ) -> Result<(Application, String), AppError> {
        let name = name.trim();
        if name.is_empty() || name.chars().count() > 64 || name.chars().any(char::is_control) {
            return Err(AppError::Invalid { field: "name", message: "must be 1–64 characters".into() });
        }
        let origin = check_origin(origin)?;
        if let Some(url) = callback_url
            && !url.starts_with(&format!("{origin}/"))
        {
            return Err(AppError::Invalid {
                field: "callback",
                message: format!("must be a URL on the application's origin {origin}"),
            });
        }
        let app = Application {
            id: random_id(self.random),
            name: name.to_owned(),
            origin,
            callback_url: callback_url.map(str::to_owned),
            created_at: self.clock.now_ms(),
            key_rotated_at: None,
            revoked_at: None,
        };
        let (api_key, hash) = self.new_key();
        if !self.store.create_application(&app, &hash).await? {
            return Err(AppError::NameTaken(name.to_owned()));
        }
        self.audit_admin(actor, &app.name, "application.created").await?;
        Ok((app, api_key))
    }

    /// A new key for a live application; the old one stops working at once.
    pub async fn rotate(&self, actor: &str, name: &str) -> Result<String, AppError> {
        let (api_key, hash) = self.new_key();
        if !self.store.rotate_application_key(name, &hash, self.clock.now_ms()).await? {
            return Err(AppError::NotFound(name.to_owned()));
        }
        self.audit_admin(actor, name, "application.key_rotated").await?;
        Ok(api_key)
    }

    pub async fn revoke(&self, actor: &str, name: &str) -> Result<(), AppError> {
        if !self.store.revoke_application(name, self.clock.now_ms()).await? {
            return Err(AppError::NotFound(name.to_owned()));
        }
        self.audit_admin(actor, name, "application.revoked").await
    }

    /// An administrator's change to an application, in the audit log (never the key).
    async fn audit_admin(&self, actor: &str, name: &str, event: &str) -> Result<(), AppError> {
        let app = self.store.application_by_name(name).await?;
        let details = serde_json::json!({
            "application": name,
            "application_id": app.as_ref().map(|a| a.id.clone()),
            "origin": app.as_ref().map(|a| a.origin.clone()),
            "callback_url": app.and_then(|a| a.callback_url),
        });
        let ev = crate::audit::AuditEvent {
            id: random_id(self.random),
            at: self.clock.now_ms(),
            event: event.to_owned(),
            actor: actor.to_owned(),
            user_id: None,
            username: None,
            flow_id: None,
            session_id: None,
            ip: None,
            outcome: "ok".into(),
            details,
        };
        Ok(self.store.apply(&[crate::ports::Effect::Audit(ev)]).await?)
    }

    /// The live application of an API key.
    pub async fn authenticate(&self, api_key: &str) -> Result<Option<Application>, StoreError> {
        if !api_key.starts_with(KEY_PREFIX) || api_key.len() > 128 {
            return Ok(None);
        }
        self.store.application_by_key(&self.key.hash_secret(KEY_PURPOSE, api_key)).await
    }

    /// The login name of `app`'s own profile for `email`.
    fn scoped_login(app: &Application, email: &str) -> String {
        format!("app.{}.{}", app.id, normalize_login(email))
    }

    /// The person `email` names for `app`: a Gatehouse user with that login name whom this application enrolled
    /// (with the person's consent, on their device), else the application's own profile for the address; with
    /// `create`, that profile is made when missing (no password: it cannot log in to Gatehouse).
    pub async fn person(&self, app: &Application, email: &str, create: bool) -> Result<Option<User>, AppError> {
        if let Some(user) = self.store.find_user_by_login(email).await?
            && self.store.app_user_enrolled(&app.id, &user.id).await?
        {
            return Ok(Some(user));
        }
        self.scoped_profile(app, email, create).await
    }

    async fn scoped_profile(&self, app: &Application, email: &str, create: bool) -> Result<Option<User>, AppError> {
        let login = Self::scoped_login(app, email);
        if let Some(user) = self.store.find_user_by_login(&login).await? {
            return Ok(Some(user));
        }
        if !create {
            return Ok(None);
        }
        let new = NewUser {
            id: random_id(self.random),
            username: login.clone(),
            context: [("email".to_owned(), email.trim().to_owned()), ("application".to_owned(), app.id.clone())].into(),
            created_at: self.clock.now_ms(),
            ..NewUser::default()
        };
        let audit =
            self.event(app, &new.id, &login, "user.created", serde_json::json!({ "scoped_to_application": app.id }));
        match self.store.create_user(&new, &audit).await {
            Ok(user) => Ok(Some(user)),
            // Two enrollments of one new address at once: the other made the profile.
            Err(StoreError::UsernameTaken(_)) => Ok(self.store.find_user_by_login(&login).await?),
            Err(e) => Err(e.into()),
        }
    }

    fn event(
        &self,
        app: &Application,
        user_id: &str,
        username: &str,
        event: &str,
        details: serde_json::Value,
    ) -> crate::audit::AuditEvent {
        crate::audit::AuditEvent {
            id: random_id(self.random),
            at: self.clock.now_ms(),
            event: event.to_owned(),
            actor: format!("app:{}", app.id),
            user_id: Some(user_id.to_owned()),
            username: Some(username.to_owned()),
            flow_id: None,
            session_id: None,
            ip: None,
            outcome: "ok".into(),
            details,
        }
    }

    /// Whether `app` enrolled the person of `email` and that person has a device.
    pub async fn enrolled(&self, app: &Application, email: &str) -> Result<bool, AppError> {
        let Some(user) = self.person(app, email, false).await? else { return Ok(false) };
        Ok(self.store.app_user_enrolled(&app.id, &user.id).await?
            && !self.store.list_devices(&user.id).await?.is_empty())
    }

    /// Starts `app`'s enrollment of `email`.
    ///
    /// A Gatehouse user with that login name and a device is asked on the device ([`Enrollment::Consent`]): an
    /// application never gets an activation for somebody's Gatehouse account, or it could put its own device on
    /// it. Anyone else gets an activation for the application's own profile of the address.
    pub async fn enroll(&self, app: &Application, email: &str, name: Option<&str>) -> Result<Enrollment, AppError> {
        if let Some(user) = self.store.find_user_by_login(email).await?
            && !self.store.list_devices(&user.id).await?.is_empty()
        {
            return Ok(if self.store.app_user_enrolled(&app.id, &user.id).await? {
                Enrollment::Done { existed: true }
            } else {
                Enrollment::Consent(Box::new(user))
            });
        }
        let existed = self.scoped_profile(app, email, false).await?.is_some();
        let user =
            self.scoped_profile(app, email, true).await?.ok_or_else(|| AppError::Internal("no profile".into()))?;
        if !self.store.list_devices(&user.id).await?.is_empty() {
            self.store.enroll_app_user(&app.id, &user.id, name, self.clock.now_ms()).await?;
            return Ok(Enrollment::Done { existed });
        }
        let details = serde_json::json!({ "by": "application", "application": app.name });
        let audit = self.event(app, &user.id, &user.username, "device.activation_started", details);
        let now = self.clock.now_ms();
        let activation = start_activation(self.store, self.key, self.random, self.config, &user, now, audit).await?;
        self.store.enroll_app_user(&app.id, &user.id, name, now).await?;
        Ok(Enrollment::Activate { existed, activation })
    }

    /// The push request that asks the person to let `app` use their authenticator: approve or deny, no number
    /// to match (server to server there is no page to show one on); the device shows the application's name.
    pub fn consent_request(&self, app: &Application, user: &User, ip: Option<&str>, expires_at: Millis) -> Approval {
        let now = self.clock.now_ms();
        Approval {
            id: random_id(self.random),
            user_id: user.id.clone(),
            kind: "app-enroll".into(),
            context: serde_json::json!({ "application": app.name, "ip": ip, "time": format_timestamp(now) }),
            number: 0,
            choices: Vec::new(),
            nonce: random_token(self.random),
            status: ApprovalStatus::Pending,
            device_id: None,
            created_at: now,
            expires_at,
            decided_at: None,
        }
    }

    /// Records the enrollment the person approved on their device.
    pub async fn finish_enrollment(&self, app: &Application, user: &User, name: Option<&str>) -> Result<(), AppError> {
        Ok(self.store.enroll_app_user(&app.id, &user.id, name, self.clock.now_ms()).await?)
    }

    /// Checks a code from one of the person's devices ([`crate::authenticator::time_code`], one step either way),
    /// counted on the authenticator's failed-attempt counter like every other answer; a code works once.
    pub async fn check_device_code(&self, app: &Application, user: &User, code: &str) -> Result<CodeCheck, AppError> {
        let code: String = code.chars().filter(|c| !c.is_whitespace()).take(16).collect();
        let now = self.clock.now_ms();
        let step = now.div_euclid(1000 * crate::authenticator::TIME_STEP_SECONDS);
        let mut keys = Vec::new();
        for device in self.store.list_devices(&user.id).await? {
            if let Ok(key) = self.key.open(crate::flow::OFFLINE_KEY_CONTEXT, &device.sealed_offline) {
                keys.push(key);
            }
        }
        let matched = (step - 1..=step + 1).find(|s| {
            keys.iter().any(|k| {
                bool::from(subtle::ConstantTimeEq::ct_eq(
                    crate::authenticator::time_code(k, *s).as_bytes(),
                    code.as_bytes(),
                ))
            })
        });
        let counter = self.config.lockout.counter(&self.config.authenticator.method_id, true);
        let attempt = crate::flow::factor::Attempt { user_id: &user.id, counter: &counter, now };
        let mut effects = Vec::new();
        let (store, app_id, user_id) = (self.store, app.id.clone(), user.id.clone());
        let counted = crate::flow::factor::counted_check(self.store, attempt, &mut effects, async move {
            match matched {
                Some(s) => Ok(store.use_app_code_step(&app_id, &user_id, s).await?),
                None => Ok(false),
            }
        })
        .await
        .map_err(|e| AppError::Internal(e.to_string()))?;
        self.store.apply(&effects).await?;
        Ok(match counted {
            crate::flow::factor::Counted::Right => CodeCheck::Right,
            crate::flow::factor::Counted::Wrong(_) => CodeCheck::Wrong,
            crate::flow::factor::Counted::Exhausted => CodeCheck::Exhausted,
        })
    }

    /// The person's request on their device to approve logging in to `app`: approve or deny, no number; the
    /// device shows the application, the address the application names and its extra context.
    pub fn login_request(
        &self,
        app: &Application,
        user: &User,
        context: serde_json::Value,
        expires_at: Millis,
    ) -> Approval {
        let mut approval = self.consent_request(app, user, None, expires_at);
        approval.kind = "app-login".into();
        if let (Some(ctx), Some(extra)) = (approval.context.as_object_mut(), context.as_object()) {
            // The application's own words, except where the server speaks: who asks, and when.
            for (k, v) in extra.iter().filter(|(k, _)| !matches!(k.as_str(), "application" | "time")) {
                ctx.insert(k.clone(), v.clone());
            }
        }
        approval
    }

    /// A single-use access token (for a minute) of an approved authentication.
    pub async fn issue_token(
        &self,
        app: &Application,
        user: &User,
        approval_id: Option<&str>,
        method: &str,
        ip: Option<&str>,
    ) -> Result<String, AppError> {
        let token = random_token(self.random);
        let now = self.clock.now_ms();
        let record = crate::ports::AppToken {
            token_hash: self.key.hash_secret(TOKEN_PURPOSE, &token),
            app_id: app.id.clone(),
            user_id: user.id.clone(),
            approval_id: approval_id.map(str::to_owned),
            method: method.to_owned(),
            ip: ip.map(str::to_owned),
            created_at: now,
            expires_at: now + TOKEN_LIFETIME_MS,
            sid: None,
        };
        self.store.create_app_token(&record).await?;
        Ok(token)
    }

    /// Uses an access token of `app`, noting the application's session id `sid`: its record and person, once.
    pub async fn redeem(
        &self,
        app: &Application,
        token: &str,
        sid: Option<&str>,
    ) -> Result<Option<(crate::ports::AppToken, User)>, AppError> {
        if token.len() > 128 {
            return Ok(None);
        }
        let hash = self.key.hash_secret(TOKEN_PURPOSE, token);
        let Some(record) = self.store.consume_app_token(&hash, &app.id, sid, self.clock.now_ms()).await? else {
            return Ok(None);
        };
        let user = self.store.get_user(&record.user_id).await?;
        Ok(user.map(|u| (record, u)))
    }

    /// Whether the person's next authentication for `app` needs a code from the device (after a denial).
    pub async fn token_required(&self, app: &Application, user: &User) -> Result<bool, AppError> {
        Ok(self.store.app_enrollment(&app.id, &user.id).await?.is_some_and(|e| e.token_required))
    }

    /// Records the person's decision on a login request of `app`: a denial makes every later authentication need
    /// a code from the device (push fatigue stops at the first "no"); a success clears that.
    pub async fn decided(&self, app: &Application, user: &User, approved: bool) -> Result<(), AppError> {
        Ok(self.store.set_app_token_required(&app.id, &user.id, !approved).await?)
    }

    /// Ends `app`'s enrollment of `email` (the "disable two-step verification" button); the person's devices stay.
    pub async fn unenroll(&self, app: &Application, email: &str) -> Result<bool, AppError> {
        let Some(user) = self.person(app, email, false).await? else { return Ok(false) };
        Ok(self.store.unenroll_app_user(&app.id, &user.id).await?)
    }
}

#[cfg(test)]
mod tests {
    use super::check_origin;

    #[test]
    fn origins_are_https_or_local_http_without_a_path() {
        assert_eq!(check_origin("https://App.example/").unwrap(), "https://app.example");
        assert_eq!(check_origin("http://localhost:3000").unwrap(), "http://localhost:3000");
        for bad in
            ["http://app.example", "https://app.example/login", "ftp://x", "app.example", "https://", "https://a@b"]
        {
            assert!(check_origin(bad).is_err(), "{bad}");
        }
    }
}
