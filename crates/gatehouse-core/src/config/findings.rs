use super::{Config, PublicFlowFailures, Restrictions, Step};

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Warning,
    Info,
}

/// A valid but risky configuration choice, reported by `gatehouse config check`.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Finding {
    pub severity: Severity,
    pub path: String,
    pub message: String,
}

impl Config {
    pub fn security_findings(&self) -> Vec<Finding> {
        let mut out = Vec::new();
        let mut warn = |path: String, message: String| out.push(Finding { severity: Severity::Warning, path, message });
        if self.hashing.memory_kib < 19456 && self.hashing.iterations < 2 {
            warn("hashing".into(), "argon2id parameters are below the OWASP minimum (m=19456 KiB, t=2)".into());
        }
        // Links and activation URIs must reach the server from where users and devices are.
        let bind_ip = self.server.bind.parse::<std::net::SocketAddr>().ok().map(|a| a.ip());
        if bind_ip.is_some_and(|ip| !ip.is_loopback()) {
            let url = self.public_url();
            let host = url.split("://").nth(1).and_then(|rest| rest.split(['/', ':']).next()).unwrap_or("");
            let loopback = host == "localhost" || host.parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_loopback());
            if loopback || bind_ip.is_some_and(|ip| ip.is_unspecified()) && self.server.public_url.is_none() {
                warn(
                    "server.public_url".into(),
                    format!(
                        "the server binds to {} but links and activation codes point to {url}: set server.public_url to the address users reach",
                        self.server.bind
                    ),
                );
            }
        }
        if self.password_policy.min_length < 8 {
            warn("password_policy.min_length".into(), "passwords shorter than 8 characters are easy to guess".into());
        }
        // Reasons some self-unlock flow lets users undo themselves.
        let unlockable: Vec<&str> = self
            .public_self_service
            .flows
            .iter()
            .filter_map(|f| match &f.restrictions {
                Restrictions::SelfUnlock(r)
                    if Step::walk(&f.steps).iter().any(|(_, s)| matches!(s, Step::UnlockUser(_))) =>
                {
                    Some(r.allowed_lock_reasons.iter().map(String::as_str))
                }
                _ => None,
            })
            .flatten()
            .collect();
        for (i, flow) in self.public_self_service.flows.iter().enumerate() {
            let base = format!("public_self_service.flows[{i}]");
            // Wrong answers in a public flow count and lock: anyone who knows a name can lock its user, and
            // unless a self-unlock flow allows that reason, only the helpdesk can undo it.
            for (path, step) in Step::walk(&flow.steps) {
                let Some(method) = self.method_of(step) else { continue };
                if self.lockout.public_flow_failures == PublicFlowFailures::Throttle {
                    break;
                }
                let reason = crate::user::lock_reason::too_many_auth_attempts(method);
                if !unlockable.contains(&reason.as_str()) {
                    warn(
                        format!("{base}.{path}"),
                        format!(
                            "flow `{}` locks users after {} wrong answers ({reason}), which no self-unlock flow allows: anyone who knows a name can lock its user out until the helpdesk unlocks (lockout.public_flow_failures = \"throttle\" blocks the factor for a while instead)",
                            flow.id,
                            self.lockout.max_for(method) + 1
                        ),
                    );
                }
            }
            let flags: Vec<(bool, &str)> = match &flow.restrictions {
                Restrictions::PasswordReset(r) => vec![
                    (r.nonexistent_user_feedback, "nonexistent_user_feedback"),
                    (r.invalid_user_feedback, "invalid_user_feedback"),
                    (r.locked_user_feedback, "locked_user_feedback"),
                ],
                Restrictions::SelfUnlock(r) => vec![
                    (r.nonexistent_user_feedback, "nonexistent_user_feedback"),
                    (r.invalid_user_feedback, "invalid_user_feedback"),
                    (r.locked_user_feedback, "locked_user_feedback"),
                    (r.too_many_unlocks_feedback, "too_many_unlocks_feedback"),
                ],
            };
            for (on, name) in flags {
                if on {
                    warn(
                        format!("{base}.restrictions.{name}"),
                        format!(
                            "flow `{}` tells callers which accounts exist or are restricted (not enumeration-safe)",
                            flow.id
                        ),
                    );
                }
            }
            let steps = Step::walk(&flow.steps);
            let unlocks = steps.iter().any(|(_, s)| matches!(s, Step::UnlockUser(_)));
            if unlocks && self.public_self_service.max_number_of_unlocks.is_none() {
                warn(
                    "public_self_service.max_number_of_unlocks".into(),
                    format!(
                        "flow `{}` unlocks users without a limit: one proven factor buys unlimited tries on the other",
                        flow.id
                    ),
                );
            }
            let first_verification = steps
                .iter()
                .position(|(_, s)| matches!(s, Step::EmailIdentityVerification(_) | Step::SmsIdentityVerification(_)));
            let first_factor = steps.iter().position(|(_, s)| match s {
                Step::Selection(sel) => sel.options.iter().any(|o| o.steps.iter().any(Step::is_factor)),
                other => other.is_factor(),
            });
            if let Some(factor) = first_factor
                && first_verification.is_none_or(|v| v > factor)
                && !flow.restrictions.any_feedback()
            {
                warn(
                    format!("{base}.{}", steps[factor].0),
                    format!(
                        "flow `{}` asks for a factor before any identity verification with feedback off: unknown users cannot be approved, so the flow fails for them in a way that reveals it; verify identity first or turn the feedback flags on",
                        flow.id
                    ),
                );
            }
            for (path, step) in &steps {
                let (otp, tries) = match step {
                    Step::EmailIdentityVerification(s) => (&s.otp, s.max_failed_attempts),
                    Step::SmsIdentityVerification(s) => (&s.otp, s.max_failed_attempts),
                    _ => continue,
                };
                let space = (otp.alphabet.chars().count() as f64).powi(otp.length as i32);
                // Guesses an attacker gets per flow, against codes that stay valid for the whole flow.
                let odds = f64::from(tries) / space;
                if odds > 1e-4 {
                    warn(
                        format!("{base}.{path}.otp"),
                        format!(
                            "a {}-character OTP with {tries} tries per flow is guessed with probability {odds:.1e} per flow; restarts multiply it",
                            otp.length
                        ),
                    );
                }
            }
        }
        self.registration_findings(&mut out);
        out
    }
}

impl Config {
    /// The failed-attempt counter a step counts on, if it checks answers.
    fn method_of<'a>(&'a self, step: &'a Step) -> Option<&'a str> {
        match step {
            Step::EmailIdentityVerification(s) => Some(&s.method_id),
            Step::SmsIdentityVerification(s) => Some(&s.method_id),
            Step::SecretQuestionsIdentityVerification(s) => Some(&s.method_id),
            Step::Totp(_) => Some(&self.authentication.totp.method_id),
            Step::Mtan(_) => Some(&self.authentication.mtan.method_id),
            Step::App2fa(_) => Some(&self.authenticator.method_id),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::config::{ConfigSource, Restrictions, load};

    fn paths(config: &crate::config::Config) -> Vec<String> {
        config.security_findings().into_iter().map(|f| f.path).collect()
    }

    #[test]
    fn the_demo_self_unlock_flow_is_reported_as_not_enumeration_safe() {
        let demo = load(&ConfigSource::Demo).unwrap();
        let found = paths(&demo);
        assert!(
            found.iter().any(|p| p == "public_self_service.flows[1].restrictions.nonexistent_user_feedback"),
            "{found:?}"
        );
        assert!(
            !found.iter().any(|p| p.starts_with("public_self_service.flows[0].restrictions")),
            "the reset flow gives no feedback: {found:?}"
        );
        // The demo throttles public failures: its email code cannot lock anybody.
        assert!(!found.contains(&"public_self_service.flows[0].steps[1]".to_owned()), "{found:?}");
    }

    #[test]
    fn public_flows_that_lock_with_a_reason_no_self_unlock_allows_are_reported() {
        let mut c = load(&ConfigSource::Demo).unwrap();
        c.lockout.public_flow_failures = crate::config::PublicFlowFailures::Lock;
        // The reset flow's email code counts on EMAIL_OTP, a reason the demo's self-unlock does not allow.
        assert!(paths(&c).contains(&"public_self_service.flows[0].steps[1]".to_owned()));
    }

    #[test]
    fn a_public_bind_with_a_loopback_public_url_is_reported() {
        let mut c = load(&ConfigSource::Demo).unwrap();
        assert!(!paths(&c).contains(&"server.public_url".to_owned()));
        c.server.bind = "0.0.0.0:8080".into();
        assert!(paths(&c).contains(&"server.public_url".to_owned()), "unset: http://0.0.0.0:8080 leads nowhere");
        c.server.public_url = Some("http://127.0.0.1:8080".into());
        assert!(paths(&c).contains(&"server.public_url".to_owned()));
        c.server.public_url = Some("https://login.example.com".into());
        assert!(!paths(&c).contains(&"server.public_url".to_owned()));
        assert_eq!(c.device_url(), "https://login.example.com");
    }

    #[test]
    fn unlimited_unlocks_and_factors_before_verification_are_reported() {
        let mut c = load(&ConfigSource::Demo).unwrap();
        c.public_self_service.max_number_of_unlocks = None;
        let Restrictions::SelfUnlock(r) = &mut c.public_self_service.flows[1].restrictions else {
            panic!("self-unlock")
        };
        r.nonexistent_user_feedback = false;
        r.invalid_user_feedback = false;
        r.locked_user_feedback = false;
        r.too_many_unlocks_feedback = false;
        let found = paths(&c);
        assert!(found.contains(&"public_self_service.max_number_of_unlocks".to_owned()), "{found:?}");
        assert!(found.contains(&"public_self_service.flows[1].steps[1]".to_owned()), "{found:?}");
    }
}
