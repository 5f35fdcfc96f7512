//! What `config check` knows about self-registration flows: errors that make a flow unusable (`validate`), and
//! risky choices the seed warns about (`findings`).

use std::collections::HashSet;

use super::findings::{Finding, Severity};
use super::{Config, ItemRole, OtpConfig, PersistStrategy, RegistrationFlow, Step, StepValidator, Validator};
use crate::messages::Channel;
use crate::registration::{items, username};

use super::validate::{Invalid, check_template, fail};

fn valid_item_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name != "captcha"
        && name.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
}

/// Checks one registration flow; `base` is its key path.
pub(crate) fn validate_flow(base: &str, flow: &RegistrationFlow) -> Result<(), Invalid> {
    let mut items_seen: HashSet<&str> = HashSet::new();
    let mut required_items: HashSet<&str> = HashSet::new();
    let mut username_source = false;
    let mut inserted = false;
    for (j, step) in flow.steps.iter().enumerate() {
        let path = format!("{base}.steps[{j}]");
        match step {
            Step::UserDataRegistration(d) => {
                for (k, item) in d.items.iter().enumerate() {
                    let ipath = format!("{path}.items[{k}]");
                    if !valid_item_name(&item.name) {
                        return fail(
                            format!("{ipath}.name"),
                            "must be 1–64 letters, digits, _, - and . (not `captcha`)",
                        );
                    }
                    if !items_seen.insert(&item.name) {
                        return fail(format!("{ipath}.name"), format!("item `{}` is collected twice", item.name));
                    }
                    if item.required {
                        required_items.insert(&item.name);
                    }
                    if item.role == ItemRole::Username {
                        if username_source {
                            return fail(format!("{ipath}.role"), "the flow has a username already");
                        }
                        if !item.required {
                            return fail(format!("{ipath}.required"), "a username item must be required");
                        }
                        username_source = true;
                    }
                    for (m, v) in item.validators.iter().enumerate() {
                        let vpath = format!("{ipath}.validators[{m}]");
                        match v {
                            Validator::Length { min, max } if min.zip(*max).is_some_and(|(a, b)| a > b) => {
                                return fail(vpath, "min must not be above max");
                            }
                            Validator::Date { min, max } => {
                                for bound in [min, max].into_iter().flatten() {
                                    if items::date(bound).is_none() {
                                        return fail(vpath, format!("`{bound}` is not a date YYYY-MM-DD"));
                                    }
                                }
                            }
                            Validator::AllowedCharacters { characters } if characters.is_empty() => {
                                return fail(vpath, "needs at least one character");
                            }
                            _ => {}
                        }
                    }
                }
                for (k, rule) in d.validators.iter().enumerate() {
                    let StepValidator::Equal { items } = rule;
                    if items.len() < 2 || items.iter().any(|n| !d.items.iter().any(|i| &i.name == n)) {
                        return fail(format!("{path}.validators[{k}].items"), "names two or more items of this step");
                    }
                }
            }
            Step::UsernameGeneration(g) => {
                username::check(&g.generator).or_else(|why| fail(format!("{path}.generator.pattern"), why))?;
                username_source = true;
            }
            Step::EmailVerification(v) => {
                check_verification(&path, &v.email_item, &v.otp, v.max_failed_attempts, &required_items)?;
                check_template(&format!("{path}.template"), &v.template, Channel::Mail)?;
                check_template(&format!("{path}.notice_template"), &v.notice_template, Channel::Mail)?;
            }
            Step::PhoneNumberVerification(v) => {
                check_verification(&path, &v.phone_item, &v.otp, v.max_failed_attempts, &required_items)?;
                check_template(&format!("{path}.template"), &v.template, Channel::Sms)?;
                check_template(&format!("{path}.notice_template"), &v.notice_template, Channel::Sms)?;
            }
            Step::ActiveAuthMethod(m) => super::validate::check_method_id(&format!("{path}.method"), &m.method)?,
            Step::RoleAssignment(r) if r.roles.is_empty() || r.roles.iter().any(|x| x.trim().is_empty()) => {
                return fail(format!("{path}.roles"), "needs at least one non-empty role");
            }
            Step::UserPersisting(p) => match (p.strategy, inserted) {
                (PersistStrategy::Insert, true) => {
                    return fail(format!("{path}.strategy"), "the account is inserted already: use update");
                }
                (PersistStrategy::Update, false) => {
                    return fail(format!("{path}.strategy"), "nothing to update before an insert");
                }
                (PersistStrategy::Insert, false) => {
                    if !username_source {
                        return fail(
                            path,
                            "the account needs a username before it is stored: a username item or username-generation",
                        );
                    }
                    inserted = true;
                }
                (PersistStrategy::Update, true) => {}
            },
            Step::App2faActivation(a) => {
                if !inserted {
                    return fail(
                        path,
                        "the authenticator is enrolled for a stored account: put it after user-persisting",
                    );
                }
                if a.enrollment_timeout_seconds == 0 || a.enrollment_timeout_seconds > 3600 {
                    return fail(format!("{path}.enrollment_timeout_seconds"), "must be between 1 and 3600");
                }
            }
            Step::SendEmailLink(_) if !inserted => {
                return fail(path, "send-email-link needs the stored account: put it after user-persisting");
            }
            _ => {}
        }
    }
    if !inserted {
        return fail(format!("{base}.steps"), "a registration flow needs a user-persisting step (strategy insert)");
    }
    for (k, name) in flow.additional_unique_items.iter().enumerate() {
        let item = flow.items().find(|i| &i.name == name);
        if !item.is_some_and(|i| i.role == ItemRole::Context) {
            return fail(
                format!("{base}.additional_unique_items[{k}]"),
                format!("`{name}` is no context data item of the flow (usernames and aliases are unique anyway)"),
            );
        }
    }
    Ok(())
}

fn check_verification(
    path: &str,
    item: &str,
    otp: &OtpConfig,
    max_failed: u32,
    required: &HashSet<&str>,
) -> Result<(), Invalid> {
    if !required.contains(item) {
        return fail(path, format!("verifies `{item}`, which no earlier data step requires"));
    }
    super::validate::check_otp(&format!("{path}.otp"), otp)?;
    if max_failed == 0 || max_failed > 100 {
        return fail(format!("{path}.max_failed_attempts"), "must be between 1 and 100");
    }
    Ok(())
}

impl Config {
    pub(crate) fn validate_registration(&self) -> Result<(), Invalid> {
        let r = &self.self_registration;
        let mut seen = HashSet::new();
        for (i, f) in r.flows.iter().enumerate() {
            let base = format!("self_registration.flows[{i}]");
            if f.id.is_empty() || !f.id.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_') {
                return fail(format!("{base}.id"), "must be non-empty letters, digits, - and _");
            }
            if !seen.insert(f.id.as_str()) {
                return fail(format!("{base}.id"), format!("duplicate flow id `{}`", f.id));
            }
            validate_flow(&base, f)?;
        }
        match &r.default_flow {
            Some(id) if r.flow(id).is_none() => {
                fail("self_registration.default_flow", format!("no registration flow `{id}`"))
            }
            None if !r.flows.is_empty() => {
                fail("self_registration.default_flow", "names the flow a registration runs without `select`")
            }
            _ if r.captcha.max_number < 1_000 || r.captcha.max_number > 100_000_000 => {
                fail("self_registration.captcha.max_number", "must be between 1000 and 100000000")
            }
            _ if r.captcha.validity_seconds == 0 || r.captcha.validity_seconds > 86_400 => {
                fail("self_registration.captcha.validity_seconds", "must be between 1 and 86400")
            }
            _ => Ok(()),
        }
    }

    /// The seed's warnings about registration flows.
    pub(crate) fn registration_findings(&self, out: &mut Vec<Finding>) {
        let mut warn = |path: String, message: String| out.push(Finding { severity: Severity::Warning, path, message });
        let flows = &self.self_registration.flows;
        for (i, f) in flows.iter().enumerate() {
            let base = format!("self_registration.flows[{i}]");
            let verified: Vec<&str> = verified_items(f);
            let has_captcha = f.steps.iter().any(|s| matches!(s, Step::UserDataRegistration(d) if d.captcha));
            if f.items().any(|i| i.role == ItemRole::Alias) && verified.is_empty() {
                warn(
                    base.clone(),
                    "a login alias without channel verification: anyone can register someone else's address".into(),
                );
            }
            if f.stealth_mode && f.steps.iter().any(|s| matches!(s, Step::SendEmailLink(_))) {
                warn(
                    base.clone(),
                    "send-email-link cannot be combined with stealth mode: the link would tell the address is new"
                        .into(),
                );
            }
            if let Some(protected) = f.stealth_mode.then(|| f.first_verified_item()).flatten() {
                for (k, other) in flows.iter().enumerate() {
                    if k != i
                        && other.items().any(|it| it.name == protected)
                        && !verified_items(other).contains(&protected)
                    {
                        warn(
                            format!("self_registration.flows[{k}]"),
                            format!(
                                "sets `{protected}` without verification, which stealth mode protects in flow `{}`: registering there tells whether an address has an account",
                                f.id
                            ),
                        );
                    }
                }
            }
            for (j, step) in f.steps.iter().enumerate() {
                if let Step::UsernameGeneration(g) = step
                    && let Ok(bits) = username::entropy_bits(&g.generator)
                    && bits < 32.0
                {
                    warn(
                        format!("{base}.steps[{j}].generator"),
                        format!(
                            "generated usernames carry {bits:.0} bits: they can be enumerated, and collide often as accounts accumulate; use 40 bits or more"
                        ),
                    );
                }
            }
            let last_persist = f.steps.iter().rposition(|s| matches!(s, Step::UserPersisting(_)));
            let last_unlock = f.steps.iter().rposition(|s| matches!(s, Step::UnlockUser(_)));
            if let (Some(p), Some(u)) = (last_persist, last_unlock)
                && u > p
            {
                warn(
                    format!("{base}.steps[{u}]"),
                    "the unlock comes after the last user-persisting step: the account stays locked".into(),
                );
            }
            for (j, step) in f.steps.iter().enumerate() {
                let (otp, max_failed, item) = match step {
                    Step::EmailVerification(v) => (&v.otp, v.max_failed_attempts, v.email_item.as_str()),
                    Step::PhoneNumberVerification(v) => (&v.otp, v.max_failed_attempts, v.phone_item.as_str()),
                    _ => continue,
                };
                #[expect(clippy::cast_precision_loss, reason = "an estimate")]
                let bits = otp.length as f64 * (otp.alphabet.chars().count() as f64).log2();
                let protected = f.stealth_mode && f.first_verified_item() == Some(item);
                if (protected && bits < 26.0) || (bits < 20.0 && max_failed > 5) {
                    warn(
                        format!("{base}.steps[{j}].otp"),
                        format!(
                            "a {:.0}-bit code with {max_failed} tries per flow can be guessed by restarting registrations; use a longer code or fewer tries",
                            bits
                        ),
                    );
                }
            }
            for other in flows.iter().filter(|o| o.id != f.id) {
                let weaker_verification = verified_items(other).is_empty() && !verified.is_empty();
                let other_captcha = other.steps.iter().any(|s| matches!(s, Step::UserDataRegistration(d) if d.captcha));
                if weaker_verification || (has_captcha && !other_captcha) {
                    warn(
                        base.clone(),
                        format!(
                            "flow `{}` registers with less ({}): clients choose the flow, so an attacker takes the weakest",
                            other.id,
                            if weaker_verification { "no channel verification" } else { "no CAPTCHA" }
                        ),
                    );
                }
            }
        }
    }
}

fn verified_items(f: &RegistrationFlow) -> Vec<&str> {
    f.steps
        .iter()
        .filter_map(|s| match s {
            Step::EmailVerification(v) => Some(v.email_item.as_str()),
            Step::PhoneNumberVerification(v) => Some(v.phone_item.as_str()),
            _ => None,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use crate::config::{ConfigSource, RegistrationFlow, load};

    fn flow(steps: serde_json::Value, extra: serde_json::Value) -> RegistrationFlow {
        let mut f = json!({ "id": "extra", "steps": steps });
        if let (Some(map), Some(more)) = (f.as_object_mut(), extra.as_object()) {
            map.extend(more.clone());
        }
        serde_json::from_value(f).unwrap()
    }

    fn data(items: serde_json::Value) -> serde_json::Value {
        json!({ "type": "user-data-registration", "items": items })
    }

    fn email_alias() -> serde_json::Value {
        json!([{ "name": "email", "role": "alias", "required": true }])
    }

    fn registration_findings(extra: RegistrationFlow) -> Vec<String> {
        let mut c = load(&ConfigSource::Demo).unwrap();
        c.self_registration.flows.push(extra);
        assert_eq!(c.validate(), Ok(()));
        c.security_findings()
            .into_iter()
            .filter(|f| f.path.starts_with("self_registration"))
            .map(|f| format!("{}: {}", f.path, f.message))
            .collect()
    }

    #[test]
    fn the_demo_registration_flows_raise_no_warning() {
        let c = load(&ConfigSource::Demo).unwrap();
        let found: Vec<_> =
            c.security_findings().into_iter().filter(|f| f.path.starts_with("self_registration")).collect();
        assert!(found.is_empty(), "{found:?}");
    }

    #[test]
    fn risky_registration_flows_are_reported() {
        // An alias nobody verifies, in a flow weaker than the demo's, setting the email the demo protects.
        let open = flow(
            json!([data(email_alias()), { "type": "username-generation" }, { "type": "user-persisting" }]),
            json!({}),
        );
        let found = registration_findings(open).join("\n");
        assert!(found.contains("without channel verification"), "{found}");
        assert!(found.contains("sets `email` without verification"), "{found}");
        assert!(found.contains("registers with less"), "{found}");

        // Stealth with an email link; an unlock after the last persisting step; a short code with many tries.
        let risky = flow(
            json!([
                { "type": "user-data-registration", "captcha": true, "items": email_alias() },
                { "type": "username-generation" },
                { "type": "email-verification", "otp": { "length": 4 }, "max_failed_attempts": 10 },
                { "type": "user-persisting" },
                { "type": "send-email-link", "target_flow": "password-reset-continue" },
                { "type": "user-unlock" }
            ]),
            json!({ "stealth_mode": true }),
        );
        let found = registration_findings(risky).join("\n");
        assert!(found.contains("cannot be combined with stealth mode"), "{found}");
        assert!(found.contains("the unlock comes after the last user-persisting step"), "{found}");
        assert!(found.contains("can be guessed by restarting registrations"), "{found}");
    }

    #[test]
    fn unusable_registration_flows_are_refused() {
        let cases = [
            (json!([data(email_alias()), { "type": "username-generation" }]), "needs a user-persisting step"),
            (json!([data(email_alias()), { "type": "user-persisting" }]), "needs a username"),
            (
                json!([data(json!([{ "name": "email", "role": "alias" }])), { "type": "username-generation" },
                       { "type": "email-verification" }, { "type": "user-persisting" }]),
                "which no earlier data step requires",
            ),
            (
                json!([data(email_alias()), { "type": "username-generation" }, { "type": "app-2fa-activation" },
                       { "type": "user-persisting" }]),
                "put it after user-persisting",
            ),
            (
                json!([data(email_alias()), { "type": "username-generation" },
                       { "type": "user-persisting", "strategy": "update" }]),
                "nothing to update",
            ),
            (
                json!([data(json!([{ "name": "captcha" }])), { "type": "username-generation" },
                       { "type": "user-persisting" }]),
                "not `captcha`",
            ),
            (
                json!([data(email_alias()), { "type": "username-generation", "generator": { "type": "pattern", "pattern": "[A-Z" } },
                       { "type": "user-persisting" }]),
                "unclosed",
            ),
        ];
        for (steps, message) in cases {
            let mut c = load(&ConfigSource::Demo).unwrap();
            c.self_registration.flows.push(flow(steps.clone(), json!({})));
            let (path, why) = c.validate().unwrap_err();
            assert!(path.starts_with("self_registration.flows[2]") && why.contains(message), "{steps}: {path}: {why}");
        }
    }
}
