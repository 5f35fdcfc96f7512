use std::collections::HashSet;

use super::{Config, FlowDef, OtpConfig, SmsTransport, SmtpTls, Step, Transport};
use crate::flow::FlowKind;
use crate::messages::Channel;

pub(crate) type Invalid = (String, String);

pub(crate) fn fail<T>(path: impl Into<String>, message: impl Into<String>) -> Result<T, Invalid> {
    Err((path.into(), message.into()))
}

/// Method ids end up in lock reasons (`LockReason.TooManyAuthAtts.<ID>`), which the product limits to 22 characters.
pub(crate) fn check_method_id(path: &str, id: &str) -> Result<(), Invalid> {
    if id.is_empty() || id.len() > 22 || !id.chars().all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_') {
        return fail(path, "must be 1–22 characters of A–Z, 0–9 and _");
    }
    Ok(())
}

pub(crate) fn check_otp(path: &str, otp: &OtpConfig) -> Result<(), Invalid> {
    let alphabet: HashSet<char> = otp.alphabet.chars().collect();
    if alphabet.len() < 2 || alphabet.len() != otp.alphabet.chars().count() {
        return fail(format!("{path}.alphabet"), "needs at least two distinct characters, no repeats");
    }
    if alphabet.iter().any(|c| c.is_whitespace() || c.is_control()) {
        return fail(format!("{path}.alphabet"), "must not contain whitespace");
    }
    if !(4..=32).contains(&otp.length) {
        return fail(format!("{path}.length"), "must be between 4 and 32");
    }
    if otp.validity_seconds == 0 {
        return fail(format!("{path}.validity_seconds"), "must be at least 1");
    }
    Ok(())
}

impl Config {
    pub fn validate(&self) -> Result<(), Invalid> {
        if let Some(url) = &self.server.public_url
            && !(url.starts_with("http://") || url.starts_with("https://"))
        {
            return fail("server.public_url", "must be an http:// or https:// URL");
        }
        if self.server.bind.parse::<std::net::SocketAddr>().is_err() {
            return fail("server.bind", "must be an IP address and port, e.g. 127.0.0.1:8080");
        }
        if self.server.secret_key.is_some() && self.server.secret_key_file.is_some() {
            return fail("server.secret_key", "set either secret_key or secret_key_file, not both");
        }
        if self.server.max_body_bytes < 1024 {
            return fail("server.max_body_bytes", "must be at least 1024");
        }
        if let Some(url) = &self.storage.url
            && !(url.starts_with("sqlite:") || url.starts_with("postgres://") || url.starts_with("postgresql://"))
        {
            return fail("storage.url", "must start with sqlite:, postgres:// or postgresql://");
        }
        if let Some(schema) = &self.storage.schema
            && (schema.is_empty() || !schema.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_'))
        {
            return fail("storage.schema", "must be lower-case letters, digits and _");
        }
        if self.storage.max_connections == 0 {
            return fail("storage.max_connections", "must be at least 1");
        }
        let h = &self.hashing;
        if h.memory_kib < 8 * h.parallelism.max(1) || h.memory_kib > 4 * 1024 * 1024 {
            return fail("hashing.memory_kib", "must be between 8×parallelism and 4194304 KiB");
        }
        if h.iterations == 0 || h.iterations > 100 {
            return fail("hashing.iterations", "must be between 1 and 100");
        }
        if h.parallelism == 0 || h.parallelism > 64 {
            return fail("hashing.parallelism", "must be between 1 and 64");
        }
        let p = &self.password_policy;
        if p.min_length == 0 || p.min_length > p.max_length {
            return fail("password_policy.min_length", "must be at least 1 and not above max_length");
        }
        if p.max_length > 4096 {
            return fail("password_policy.max_length", "must be at most 4096");
        }
        if p.min_strength > 4 {
            return fail("password_policy.min_strength", "must be a zxcvbn score between 0 and 4");
        }
        if self.lockout.max_failed_attempts == 0 {
            return fail("lockout.max_failed_attempts", "must be at least 1");
        }
        for (method, max) in &self.lockout.per_method {
            check_method_id(&format!("lockout.per_method.{method}"), method)?;
            if *max == 0 {
                return fail(format!("lockout.per_method.{method}"), "must be at least 1");
            }
        }
        let t = &self.lockout.public_throttle;
        if !(t.factor.is_finite() && t.factor >= 1.0 && t.factor <= 10.0) {
            return fail("lockout.public_throttle.factor", "must be between 1.0 and 10.0");
        }
        if t.base_ms == 0 || t.max_ms < t.base_ms {
            return fail("lockout.public_throttle.base_ms", "must be at least 1 and not above max_ms");
        }
        self.validate_messaging()?;
        if self.flow_sessions.idle_timeout_seconds == 0
            || self.flow_sessions.idle_timeout_seconds > self.flow_sessions.max_lifetime_seconds
        {
            return fail("flow_sessions.idle_timeout_seconds", "must be at least 1 and not above max_lifetime_seconds");
        }
        self.validate_authentication()?;
        let a = &self.authenticator;
        if let Some(url) = &a.public_url
            && !(url.starts_with("http://") || url.starts_with("https://"))
        {
            return fail("authenticator.public_url", "must be an http:// or https:// URL");
        }
        if a.activation_timeout_seconds == 0 || a.approval_timeout_seconds == 0 {
            return fail("authenticator.activation_timeout_seconds", "timeouts must be at least 1 second");
        }
        if a.poll_wait_seconds > 55 {
            return fail("authenticator.poll_wait_seconds", "must be at most 55 (clients time out at about 60 s)");
        }
        check_method_id("authenticator.method_id", &a.method_id)?;
        self.validate_flows()
    }

    fn validate_authentication(&self) -> Result<(), Invalid> {
        let a = &self.authentication;
        if a.enumeration_protection && a.temporary_locking.enabled {
            return fail(
                "authentication.enumeration_protection",
                "cannot be combined with temporary locking (its lock expiry would tell which accounts exist)",
            );
        }
        if a.response_time_ms > 30_000 {
            return fail("authentication.response_time_ms", "must be at most 30000");
        }
        let t = &a.temporary_locking;
        if !(t.factor.is_finite() && t.factor >= 1.0 && t.factor <= 10.0) {
            return fail("authentication.temporary_locking.factor", "must be between 1.0 and 10.0");
        }
        check_method_id("authentication.password_method_id", &a.password_method_id)?;
        check_method_id("authentication.totp.method_id", &a.totp.method_id)?;
        check_method_id("authentication.mtan.method_id", &a.mtan.method_id)?;
        if !(6..=8).contains(&a.totp.digits) {
            return fail("authentication.totp.digits", "must be 6, 7 or 8");
        }
        if !(15..=120).contains(&a.totp.period_seconds) {
            return fail("authentication.totp.period_seconds", "must be between 15 and 120");
        }
        if a.totp.skew_steps > 2 {
            return fail("authentication.totp.skew_steps", "must be at most 2");
        }
        if a.totp.issuer.trim().is_empty() || a.totp.issuer.contains(':') {
            return fail("authentication.totp.issuer", "must be non-empty and without ':'");
        }
        check_otp("authentication.mtan.otp", &a.mtan.otp)?;
        if a.session.idle_timeout_seconds == 0 || a.session.idle_timeout_seconds > a.session.max_lifetime_seconds {
            return fail(
                "authentication.session.idle_timeout_seconds",
                "must be at least 1 and not above max_lifetime_seconds",
            );
        }
        Ok(())
    }

    fn validate_messaging(&self) -> Result<(), Invalid> {
        let m = &self.messaging;
        if m.from.parse::<lettre::message::Mailbox>().is_err() {
            return fail("messaging.from", "must be a mailbox such as `Gatehouse <noreply@example.com>`");
        }
        if !crate::messages::is_supported_language(&m.default_language) {
            return fail("messaging.default_language", "must be one of: en, de");
        }
        if m.retry_initial_delay_ms == 0 || m.retry_initial_delay_ms > m.retry_max_delay_ms {
            return fail("messaging.retry_initial_delay_ms", "must be at least 1 and not above retry_max_delay_ms");
        }
        if m.concurrency == 0 || m.concurrency > 256 {
            return fail("messaging.concurrency", "must be between 1 and 256");
        }
        if m.poll_interval_ms == 0 {
            return fail("messaging.poll_interval_ms", "must be at least 1");
        }
        let sms = &m.sms;
        if sms.bearer_token.is_some() && sms.bearer_token_file.is_some() {
            return fail("messaging.sms.bearer_token", "set either bearer_token or bearer_token_file, not both");
        }
        if sms.transport == SmsTransport::Http {
            let url = sms.url.as_deref().unwrap_or("");
            let loopback_http = url.strip_prefix("http://").is_some_and(|rest| {
                let host = rest.split(['/', ':']).next().unwrap_or("");
                is_loopback_host(host)
            });
            if !(url.starts_with("https://") || loopback_http) {
                return fail("messaging.sms.url", "must be an https:// URL (plain http only towards loopback)");
            }
            if sms.timeout_seconds == 0 || sms.timeout_seconds > 120 {
                return fail("messaging.sms.timeout_seconds", "must be between 1 and 120");
            }
        }
        if m.transport == Transport::Smtp {
            let s = &m.smtp;
            if s.host.trim().is_empty() {
                return fail("messaging.smtp.host", "must not be empty when transport = \"smtp\"");
            }
            if s.port == 0 {
                return fail("messaging.smtp.port", "must not be 0");
            }
            if s.password.is_some() && s.password_file.is_some() {
                return fail("messaging.smtp.password", "set either password or password_file, not both");
            }
            if (s.password.is_some() || s.password_file.is_some()) && s.username.is_none() {
                return fail("messaging.smtp.username", "is required when a password is set");
            }
            if s.tls == SmtpTls::None && !is_loopback_host(&s.host) {
                return fail("messaging.smtp.tls", "\"none\" is only allowed towards a loopback host");
            }
            if s.timeout_seconds == 0 || s.timeout_seconds > 120 {
                return fail("messaging.smtp.timeout_seconds", "must be between 1 and 120");
            }
            // RFC 5321 4.5.3.2.7: a server waits at least 5 minutes for an idle client's next command.
            if s.keep_idle_seconds > 300 {
                return fail(
                    "messaging.smtp.keep_idle_seconds",
                    "must be at most 300 (servers may drop idle clients after 5 minutes)",
                );
            }
        }
        Ok(())
    }

    fn validate_flows(&self) -> Result<(), Invalid> {
        for (section, ids) in [
            ("authentication.flows", self.authentication.flows.iter().map(|f| f.id.as_str()).collect::<Vec<_>>()),
            ("public_self_service.flows", self.public_self_service.flows.iter().map(|f| f.id.as_str()).collect()),
        ] {
            let mut seen = HashSet::new();
            for (i, id) in ids.into_iter().enumerate() {
                check_id(&format!("{section}[{i}].id"), id)?;
                if !seen.insert(id) {
                    return fail(format!("{section}[{i}].id"), format!("duplicate flow id `{id}`"));
                }
            }
        }
        for (base, flow) in self.all_flows() {
            check_flow(&base, flow)?;
        }
        self.validate_registration()?;
        let ui = &self.ui;
        let hex = ui.brand_color.strip_prefix('#').unwrap_or("");
        if !(hex.len() == 3 || hex.len() == 6) || !hex.chars().all(|c| c.is_ascii_hexdigit()) {
            return fail("ui.brand_color", "must be #rgb or #rrggbb");
        }
        for (key, flow) in [("ui.forgot_password_flow", &ui.forgot_password_flow), ("ui.unlock_flow", &ui.unlock_flow)]
        {
            if let Some(id) = flow
                && self.public_self_service.flow(id).is_none()
            {
                return fail(key, format!("no public self-service flow `{id}`"));
            }
        }
        let legacy: Vec<usize> = self
            .public_self_service
            .flows
            .iter()
            .enumerate()
            .filter(|(_, f)| f.legacy_reset_entry)
            .map(|(i, _)| i)
            .collect();
        if let [_, second, ..] = legacy.as_slice() {
            return fail(
                format!("public_self_service.flows[{second}].legacy_reset_entry"),
                "only one flow can be the legacy reset entry",
            );
        }
        if let Some(&i) = legacy.first()
            && !matches!(self.public_self_service.flows[i].steps.first(), Some(Step::UserIdentification(_)))
        {
            return fail(
                format!("public_self_service.flows[{i}].legacy_reset_entry"),
                "the legacy reset entry starts with identify: its first step must be user-identification",
            );
        }
        let a = &self.authentication;
        for (i, f) in self.public_self_service.flows.iter().enumerate() {
            let Some(next) = &f.initialize_next_auth_flow else { continue };
            let path = format!("public_self_service.flows[{i}].initialize_next_auth_flow");
            let app_id = next.application.as_deref().unwrap_or(&a.default_application);
            let Some(app) = a.application(app_id) else {
                return fail(format!("{path}.application"), format!("no application `{app_id}`"));
            };
            let first = a.flow(&app.flow).and_then(|flow| flow.steps.first());
            if !matches!(first, Some(Step::Password(_) | Step::Username(_))) {
                return fail(path, format!("the login of `{app_id}` must start with a password or username step"));
            }
            if next.validity_seconds == 0 || next.validity_seconds > 3600 {
                return fail(format!("{path}.validity_seconds"), "must be between 1 and 3600");
            }
        }
        if self.public_self_service.response_time_ms > 30_000 {
            return fail("public_self_service.response_time_ms", "must be at most 30000");
        }
        let rl = &self.rate_limits;
        if rl.enabled && (rl.per_ip_requests == 0 || rl.per_account_requests == 0) {
            return fail(
                "rate_limits",
                "per_ip_requests and per_account_requests must be at least 1 (or enabled = false)",
            );
        }
        if rl.per_ip_window_seconds == 0 || rl.per_account_window_seconds == 0 {
            return fail("rate_limits", "windows must be at least 1 second");
        }
        for (i, p) in rl.trusted_proxies.iter().enumerate() {
            if p.parse::<std::net::IpAddr>().is_err() {
                return fail(format!("rate_limits.trusted_proxies[{i}]"), "must be an IP address");
            }
        }
        let sq = &self.public_self_service.secret_questions;
        let mut seen = HashSet::new();
        for (i, q) in sq.questions.iter().enumerate() {
            if !q.contains('.') || q.len() > 128 || q.chars().any(char::is_whitespace) || !seen.insert(q.as_str()) {
                return fail(
                    format!("public_self_service.secret_questions.questions[{i}]"),
                    "must be a distinct resource key with a `.` and no blanks, e.g. secret-question.first-pet",
                );
            }
        }
        if sq.min_answers == 0 || sq.min_answers > sq.questions.len() {
            return fail(
                "public_self_service.secret_questions.min_answers",
                "must be between 1 and the number of questions",
            );
        }
        for (base, flow) in self.all_flows() {
            for (path, step) in Step::walk(flow.steps) {
                if let Step::SecretQuestionsIdentityVerification(s) = step
                    && s.questions_asked > sq.min_answers
                {
                    return fail(
                        format!("{base}.{path}.questions_asked"),
                        "cannot ask more questions than every user has answered (secret_questions.min_answers)",
                    );
                }
            }
        }
        let targets = crate::flow::continuation::continuation_flows(self);
        for (base, flow) in self.all_flows() {
            for (path, step) in Step::walk(flow.steps) {
                if let Step::SendEmailLink(s) = step
                    && !targets.contains(&s.target_flow.as_str())
                {
                    return fail(
                        format!("{base}.{path}.target_flow"),
                        format!("`{}` is no public self-service flow starting with flow-continuation", s.target_flow),
                    );
                }
            }
        }
        let a = &self.authentication;
        let mut seen = HashSet::new();
        for (i, app) in a.applications.iter().enumerate() {
            let path = format!("authentication.applications[{i}]");
            check_id(&format!("{path}.id"), &app.id)?;
            if !seen.insert(app.id.as_str()) {
                return fail(format!("{path}.id"), format!("duplicate application id `{}`", app.id));
            }
            if a.flow(&app.flow).is_none() {
                return fail(format!("{path}.flow"), format!("no authentication flow `{}`", app.flow));
            }
        }
        if a.application(&a.default_application).is_none() {
            return fail(
                "authentication.default_application",
                format!("no application `{}` in authentication.applications", a.default_application),
            );
        }
        Ok(())
    }
}

pub(crate) fn check_template(path: &str, name: &str, channel: Channel) -> Result<(), Invalid> {
    if crate::messages::is_template_for(name, channel) {
        return Ok(());
    }
    let names: Vec<&str> = crate::messages::KNOWN.iter().filter(|k| k.channel == channel).map(|k| k.name).collect();
    fail(path, format!("unknown template `{name}` (one of: {})", names.join(", ")))
}

fn check_id(path: &str, id: &str) -> Result<(), Invalid> {
    if id.is_empty() || !id.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_') {
        return fail(path, "must be non-empty letters, digits, - and _");
    }
    Ok(())
}

/// What the steps before a position have established.
#[derive(Debug, Clone, Copy, Default)]
struct Progress {
    identified: bool,
    verified: bool,
}

fn check_flow(base: &str, flow: FlowDef<'_>) -> Result<(), Invalid> {
    if flow.steps.is_empty() {
        return fail(format!("{base}.steps"), "a flow needs at least one step");
    }
    let mut progress = Progress::default();
    for (j, step) in flow.steps.iter().enumerate() {
        check_step(&format!("{base}.steps[{j}]"), step, flow.kind, &mut progress, false)?;
    }
    if flow.kind == FlowKind::Authentication && !progress.verified {
        return fail(
            format!("{base}.steps"),
            "an authentication flow needs a password or a factor step that every user must pass",
        );
    }
    Ok(())
}

fn check_step(path: &str, step: &Step, kind: FlowKind, p: &mut Progress, in_option: bool) -> Result<(), Invalid> {
    if !crate::flow::allowed_kinds(step).contains(&kind) {
        return fail(path, format!("a `{}` step cannot be used in a {} flow", step.kind(), kind.as_str()));
    }
    let needs_user = |p: &Progress| {
        if p.identified {
            Ok(())
        } else {
            fail(path, format!("{} needs a step that identifies the user before it", step.kind()))
        }
    };
    match step {
        Step::Password(_) | Step::Username(_) | Step::UserIdentification(_) => {
            if p.identified {
                return fail(path, "a flow identifies its user only once");
            }
            p.identified = true;
            p.verified |= matches!(step, Step::Password(_));
        }
        Step::EmailIdentityVerification(s) => {
            needs_user(p)?;
            check_method_id(&format!("{path}.method_id"), &s.method_id)?;
            check_otp(&format!("{path}.otp"), &s.otp)?;
            if s.max_failed_attempts == 0 {
                return fail(format!("{path}.max_failed_attempts"), "must be at least 1");
            }
            check_template(&format!("{path}.template"), &s.template, Channel::Mail)?;
            p.verified = true;
        }
        Step::SmsIdentityVerification(s) => {
            check_template(&format!("{path}.template"), &s.template, Channel::Sms)?;
            needs_user(p)?;
            check_method_id(&format!("{path}.method_id"), &s.method_id)?;
            check_otp(&format!("{path}.otp"), &s.otp)?;
            if s.max_failed_attempts == 0 {
                return fail(format!("{path}.max_failed_attempts"), "must be at least 1");
            }
            if s.phone_item.trim().is_empty() {
                return fail(format!("{path}.phone_item"), "must not be empty");
            }
            p.verified = true;
        }
        Step::Totp(_) | Step::Mtan(_) => {
            needs_user(p)?;
            p.verified = true;
        }
        Step::App2fa(s) => {
            needs_user(p)?;
            if let Some(purpose) = &s.purpose
                && !matches!(purpose.as_str(), "login" | "unlock" | "password-reset")
            {
                return fail(format!("{path}.purpose"), "must be login, unlock or password-reset");
            }
            // A device's denial counts on the counter of the flow that asked, told by its purpose.
            if s.purpose.as_deref() == Some("login") && kind.hides_locks() {
                return fail(format!("{path}.purpose"), "`login` is for authentication flows");
            }
            p.verified = true;
        }
        Step::Selection(s) => {
            if in_option {
                return fail(path, "a selection cannot hold another selection");
            }
            needs_user(p)?;
            if s.options.is_empty() {
                return fail(format!("{path}.options"), "a selection needs at least one option");
            }
            let mut ids = HashSet::new();
            let mut all_verify = true;
            for (k, option) in s.options.iter().enumerate() {
                let opath = format!("{path}.options[{k}]");
                if option.id.is_empty()
                    || !option.id.chars().all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_')
                {
                    return fail(format!("{opath}.id"), "must be A–Z, 0–9 and _, e.g. MTAN");
                }
                if !ids.insert(option.id.as_str()) {
                    return fail(format!("{opath}.id"), format!("duplicate option id `{}`", option.id));
                }
                if option.steps.is_empty() {
                    return fail(format!("{opath}.steps"), "an option needs at least one step");
                }
                let mut inner = *p;
                for (m, inner_step) in option.steps.iter().enumerate() {
                    check_step(&format!("{opath}.steps[{m}]"), inner_step, kind, &mut inner, true)?;
                }
                all_verify &= inner.verified;
            }
            // Without `required` a user with no option available skips the step (public self-service offers
            // every option until the identity is verified, so there it is never skipped).
            p.verified |= all_verify && (s.required || kind.hides_locks());
        }
        Step::RequiredRole(s) => {
            needs_user(p)?;
            if s.roles.is_empty() || s.roles.iter().any(|r| r.trim().is_empty()) {
                return fail(format!("{path}.roles"), "needs at least one non-empty role");
            }
        }
        Step::SetPassword(s) => {
            if !p.verified {
                return fail(
                    path,
                    "set-password must follow an identity verification step, or anyone could set anyone's password",
                );
            }
            check_method_id(&format!("{path}.password_method_id"), &s.password_method_id)?;
        }
        Step::UnlockUser(_) if kind == FlowKind::SelfRegistration => {}
        Step::UnlockUser(s) => {
            if !p.verified {
                return fail(
                    path,
                    "unlock-user must follow a verification or approval step, or anyone could unlock anyone",
                );
            }
            for (k, id) in s.counters_to_reset.iter().enumerate() {
                check_method_id(&format!("{path}.counters_to_reset[{k}]"), id)?;
            }
        }
        Step::SendEmailLink(s) => {
            needs_user(p)?;
            check_template(&format!("{path}.template"), &s.template, Channel::Mail)?;
            if s.validity_seconds == 0 || s.validity_seconds > 7 * 24 * 3600 {
                return fail(format!("{path}.validity_seconds"), "must be between 1 and 604800 (a week)");
            }
            // The target is checked against the whole configuration in `validate_flows`.
            if s.target_flow.is_empty() {
                return fail(format!("{path}.target_flow"), "names the flow the link continues in");
            }
        }
        Step::SecretQuestionsIdentityVerification(s) => {
            needs_user(p)?;
            check_method_id(&format!("{path}.method_id"), &s.method_id)?;
            if s.max_failed_attempts == 0 {
                return fail(format!("{path}.max_failed_attempts"), "must be at least 1");
            }
            // `validate_secret_questions` checks questions_asked against the configured questions.
            if s.questions_asked == 0 {
                return fail(format!("{path}.questions_asked"), "must be at least 1");
            }
            p.verified = true;
        }
        Step::PasswordLetterOrder(s) => {
            if !p.verified {
                return fail(path, "password-letter-order must follow an identity verification step");
            }
            check_template(&format!("{path}.template"), &s.template, Channel::Letter)?;
            if !(10..=32).contains(&s.password_length) {
                return fail(format!("{path}.password_length"), "must be between 10 and 32");
            }
        }
        Step::AcknowledgeMessage(s) => {
            let set = |v: &Option<String>| v.as_deref().is_some_and(|t| !t.trim().is_empty());
            if !set(&s.message_id) && !set(&s.server_message) {
                return fail(path, "needs a message_id or a server_message");
            }
        }
        Step::FlowContinuation(_) => {
            if p.identified || in_option {
                return fail(path, "flow-continuation must be the first step of its flow");
            }
            p.identified = true;
            p.verified = true;
        }
        Step::EmailNotification(s) => {
            needs_user(p)?;
            check_template(&format!("{path}.template"), &s.template, Channel::Mail)?;
        }
        // Checked with their flow's settings in `registration_checks`.
        Step::UserPersisting(_) => {
            p.identified = true;
            p.verified = true;
        }
        Step::UserDataRegistration(_)
        | Step::UsernameGeneration(_)
        | Step::EmailVerification(_)
        | Step::PhoneNumberVerification(_)
        | Step::PasswordRegistration(_)
        | Step::RoleAssignment(_)
        | Step::ActiveAuthMethod(_)
        | Step::App2faActivation(_) => {}
    }
    Ok(())
}

fn is_loopback_host(host: &str) -> bool {
    host == "localhost" || host.parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

#[cfg(test)]
mod tests {
    use crate::config::{
        AuthenticationFlow, ConfigSource, PasswordStep, SendEmailLinkStep, SetPasswordStep, Step, TotpStep, load,
    };

    fn demo() -> crate::config::Config {
        load(&ConfigSource::Demo).unwrap()
    }

    #[test]
    fn the_demo_configuration_is_valid() {
        assert_eq!(demo().validate(), Ok(()));
    }

    #[test]
    fn smtp_timeouts_are_bounded() {
        let smtp = |timeout_seconds: u64, keep_idle_seconds: u64| {
            let mut c = demo();
            c.messaging.transport = crate::config::Transport::Smtp;
            c.messaging.smtp.timeout_seconds = timeout_seconds;
            c.messaging.smtp.keep_idle_seconds = keep_idle_seconds;
            c.validate().err().map(|(path, _)| path)
        };
        assert_eq!(smtp(10, 60), None);
        assert_eq!(smtp(1, 0), None, "no connection kept is allowed");
        assert_eq!(smtp(120, 300), None);
        assert_eq!(smtp(0, 60).as_deref(), Some("messaging.smtp.timeout_seconds"));
        assert_eq!(smtp(121, 60).as_deref(), Some("messaging.smtp.timeout_seconds"));
        assert_eq!(smtp(10, 301).as_deref(), Some("messaging.smtp.keep_idle_seconds"));
    }

    #[test]
    fn a_step_in_a_flow_kind_that_does_not_allow_it_is_refused() {
        let mut c = demo();
        c.public_self_service.flows[0].steps.insert(0, Step::Password(PasswordStep {}));
        let (path, message) = c.validate().unwrap_err();
        assert_eq!(path, "public_self_service.flows[0].steps[0]");
        assert!(message.contains("`password` step cannot be used in a public_self_service flow"), "{message}");

        let mut c = demo();
        c.authentication.flows[0].steps.push(Step::SetPassword(SetPasswordStep::default()));
        let (path, message) = c.validate().unwrap_err();
        assert_eq!(path, "authentication.flows[0].steps[2]");
        assert!(message.contains("authentication flow"), "{message}");
    }

    #[test]
    fn order_targets_and_verification_are_checked() {
        let mut c = demo();
        c.public_self_service.flows[0].steps.insert(0, Step::Totp(TotpStep {}));
        assert!(c.validate().unwrap_err().1.contains("needs a step that identifies the user"));

        let mut c = demo();
        let link =
            Step::SendEmailLink(SendEmailLinkStep { target_flow: "password-reset".into(), ..Default::default() });
        c.public_self_service.flows[0].steps.push(link);
        let (path, message) = c.validate().unwrap_err();
        assert!(path.ends_with(".target_flow") && message.contains("flow-continuation"), "{path}: {message}");

        // A login that no user must pass with a credential is refused.
        let mut c = demo();
        c.authentication
            .flows
            .push(AuthenticationFlow { id: "open".into(), steps: vec![Step::Username(Default::default())] });
        assert_eq!(c.validate().unwrap_err().0, "authentication.flows[1].steps");
    }
}
