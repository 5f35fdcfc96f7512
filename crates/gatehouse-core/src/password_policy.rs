//! Password policy: length bounds, not the username, not guessable. `SAME_AS_OLD` needs a hash check and is
//! done by the caller.

use crate::config::PasswordPolicyConfig;

/// `meta.detail` values of `PASSWORD_POLICY_VIOLATED`.
pub mod detail {
    pub const TOO_SHORT: &str = "TOO_SHORT";
    pub const TOO_LONG: &str = "TOO_LONG";
    pub const CONTAINS_USERNAME: &str = "CONTAINS_USERNAME";
    pub const TOO_GUESSABLE: &str = "TOO_GUESSABLE";
    pub const SAME_AS_OLD: &str = "SAME_AS_OLD";
}

/// The violations of `new_password` for `user`: the checks of [`check`] with the user's name, aliases and
/// context data as guessable inputs, and `SAME_AS_OLD` — against `known_old` when the caller just verified the
/// old password, else against the stored hash. The one check of the set-password step and the password change.
pub async fn check_for_user(
    policy: &PasswordPolicyConfig,
    hasher: &dyn crate::crypto::PasswordHashing,
    user: &crate::user::User,
    new_password: &str,
    known_old: Option<&str>,
) -> Result<Vec<&'static str>, crate::crypto::HashError> {
    let mut inputs: Vec<&str> = vec![user.username.as_str()];
    inputs.extend(user.aliases.iter().map(String::as_str));
    inputs.extend(user.context.values().map(String::as_str));
    let mut violations = check(policy, new_password, &user.username, &inputs);
    if violations.is_empty() && policy.reject_same_as_old {
        let same = match (known_old, &user.password_hash) {
            (Some(old), _) => old == new_password,
            (None, Some(stored)) => hasher.verify(new_password.to_owned(), stored.clone()).await?.matches,
            (None, None) => false,
        };
        if same {
            violations.push(detail::SAME_AS_OLD);
        }
    }
    Ok(violations)
}

/// Checks everything that needs no stored hash. `user_inputs` (username, email, names) count as guessable.
pub fn check(policy: &PasswordPolicyConfig, password: &str, username: &str, user_inputs: &[&str]) -> Vec<&'static str> {
    let mut violations = Vec::new();
    let length = password.chars().count();
    if length < policy.min_length {
        violations.push(detail::TOO_SHORT);
    }
    if length > policy.max_length {
        // Nothing else is looked at: an oversized password is not fed to the strength estimator.
        violations.push(detail::TOO_LONG);
        return violations;
    }
    let lowered = password.to_lowercase();
    let name = username.trim().to_lowercase();
    if policy.reject_username && !name.is_empty() && lowered.contains(&name) {
        violations.push(detail::CONTAINS_USERNAME);
    }
    if policy.min_strength > 0 && !password.is_empty() {
        let score = u8::from(zxcvbn::zxcvbn(password, user_inputs).score());
        if score < policy.min_strength {
            violations.push(detail::TOO_GUESSABLE);
        }
    }
    violations
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy() -> PasswordPolicyConfig {
        PasswordPolicyConfig::default()
    }

    #[test]
    fn a_strong_password_passes() {
        assert!(check(&policy(), "correct-Horse-battery-staple-42", "jdoe", &["jdoe"]).is_empty());
    }

    #[test]
    fn each_violation_has_its_detail() {
        assert_eq!(check(&policy(), "x9!Q", "jdoe", &[]), vec![detail::TOO_SHORT, detail::TOO_GUESSABLE]);
        assert_eq!(check(&policy(), &"a".repeat(129), "jdoe", &[]), vec![detail::TOO_LONG]);
        assert!(check(&policy(), "JDoe-Tr4vel-Kayak-77", "jdoe", &[]).contains(&detail::CONTAINS_USERNAME));
        assert_eq!(check(&policy(), "password1", "jdoe", &[]), vec![detail::TOO_GUESSABLE]);
        assert_eq!(check(&policy(), "qwertyuiop", "jdoe", &[]), vec![detail::TOO_GUESSABLE]);
    }

    #[test]
    fn length_counts_characters_not_bytes() {
        let p = PasswordPolicyConfig { min_strength: 0, ..policy() };
        assert!(check(&p, "ääääääää", "x", &[]).is_empty());
        assert_eq!(check(&p, "äääää", "x", &[]), vec![detail::TOO_SHORT]);
    }

    #[test]
    fn user_inputs_count_as_guessable() {
        let p = policy();
        let pw = "Wilhelmina.Vandersloot";
        assert!(check(&p, pw, "x", &[]).is_empty(), "strong on its own");
        assert_eq!(check(&p, pw, "x", &["wilhelmina.vandersloot"]), vec![detail::TOO_GUESSABLE]);
    }
}
