//! Built-in message templates, in English and German.
//!
//! A template names its variables as `{name}`; rendering fails when a variable is missing or unknown, so a
//! message with a hole in it is never sent.

use std::collections::BTreeMap;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RenderedMessage {
    pub subject: String,
    pub body: String,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum TemplateError {
    #[error("unknown template `{0}`")]
    UnknownTemplate(String),
    #[error("template `{template}` uses `{{{variable}}}`, which was not provided")]
    MissingVariable { template: String, variable: String },
    #[error("template `{0}` has an unclosed `{{`")]
    Malformed(String),
}

struct Template {
    name: &'static str,
    lang: &'static str,
    subject: &'static str,
    body: &'static str,
}

const TEMPLATES: &[Template] = &[
    Template {
        name: "email-otp",
        lang: "en",
        subject: "Your password reset code",
        body: "Hello {username},\n\nyour code to reset your password is:\n\n    {otp}\n\nIt is valid for {minutes} minutes. \
               If you did not ask to reset your password, you can ignore this message; your password stays unchanged.\n",
    },
    Template {
        name: "email-otp",
        lang: "de",
        subject: "Ihr Code zum Zurücksetzen des Passworts",
        body: "Hallo {username},\n\nIhr Code zum Zurücksetzen Ihres Passworts lautet:\n\n    {otp}\n\nEr ist {minutes} Minuten gültig. \
               Wenn Sie das Zurücksetzen nicht angefordert haben, können Sie diese Nachricht ignorieren; Ihr Passwort bleibt unverändert.\n",
    },
    Template {
        name: "password-changed",
        lang: "en",
        subject: "Your password was changed",
        body: "Hello {username},\n\nthe password of your account was changed at {time}.\n\n\
               If this was not you, contact your helpdesk at once.\n",
    },
    Template {
        name: "password-changed",
        lang: "de",
        subject: "Ihr Passwort wurde geändert",
        body: "Hallo {username},\n\ndas Passwort Ihres Kontos wurde am {time} geändert.\n\n\
               Wenn Sie das nicht waren, wenden Sie sich bitte sofort an Ihren Helpdesk.\n",
    },
];

/// SMS texts: no subject, short.
const SMS_TEMPLATES: &[(&str, &str, &str)] = &[
    ("mtan-otp", "en", "Your Gatehouse login code: {otp} (valid {minutes} min). Never share it."),
    ("mtan-otp", "de", "Ihr Gatehouse-Anmeldecode: {otp} ({minutes} Min. gültig). Geben Sie ihn nie weiter."),
    ("sms-otp", "en", "Your Gatehouse verification code: {otp} (valid {minutes} min). Never share it."),
    ("sms-otp", "de", "Ihr Gatehouse-Bestätigungscode: {otp} ({minutes} Min. gültig). Geben Sie ihn nie weiter."),
];

/// Renders an SMS text in `lang`, falling back to English.
pub fn render_sms(name: &str, lang: &str, vars: &BTreeMap<&str, String>) -> Result<String, TemplateError> {
    let text = SMS_TEMPLATES
        .iter()
        .find(|(n, l, _)| *n == name && *l == lang)
        .or_else(|| SMS_TEMPLATES.iter().find(|(n, l, _)| *n == name && *l == "en"))
        .map(|(_, _, t)| *t)
        .ok_or_else(|| TemplateError::UnknownTemplate(name.to_owned()))?;
    fill(name, text, vars)
}

pub const LANGUAGES: &[&str] = &["en", "de"];

pub fn is_supported_language(lang: &str) -> bool {
    LANGUAGES.contains(&lang)
}

pub fn is_known_template(name: &str) -> bool {
    TEMPLATES.iter().any(|t| t.name == name)
}

/// Renders `name` in `lang`, falling back to English for a language without a translation.
pub fn render(name: &str, lang: &str, vars: &BTreeMap<&str, String>) -> Result<RenderedMessage, TemplateError> {
    let template = TEMPLATES
        .iter()
        .find(|t| t.name == name && t.lang == lang)
        .or_else(|| TEMPLATES.iter().find(|t| t.name == name && t.lang == "en"))
        .ok_or_else(|| TemplateError::UnknownTemplate(name.to_owned()))?;
    Ok(RenderedMessage { subject: fill(name, template.subject, vars)?, body: fill(name, template.body, vars)? })
}

fn fill(name: &str, text: &str, vars: &BTreeMap<&str, String>) -> Result<String, TemplateError> {
    let mut out = String::with_capacity(text.len() + 32);
    let mut rest = text;
    while let Some(open) = rest.find('{') {
        out.push_str(&rest[..open]);
        let after = &rest[open + 1..];
        let close = after.find('}').ok_or_else(|| TemplateError::Malformed(name.to_owned()))?;
        let var = &after[..close];
        let value = vars
            .get(var)
            .ok_or_else(|| TemplateError::MissingVariable { template: name.to_owned(), variable: var.to_owned() })?;
        out.push_str(value);
        rest = &after[close + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars(pairs: &[(&'static str, &str)]) -> BTreeMap<&'static str, String> {
        pairs.iter().map(|(k, v)| (*k, (*v).to_owned())).collect()
    }

    #[test]
    fn renders_every_template_in_every_language() {
        let v = vars(&[("username", "jdoe"), ("otp", "12345678"), ("minutes", "10"), ("time", "2026-01-01 10:00 UTC")]);
        for t in TEMPLATES {
            let m = render(t.name, t.lang, &v).unwrap_or_else(|e| panic!("{}: {e}", t.name));
            assert!(!m.body.contains('{'), "unfilled variable in {} {}", t.name, t.lang);
        }
        assert!(
            render("email-otp", "de", &v).is_ok_and(|m| m.body.contains("Hallo jdoe") && m.body.contains("12345678"))
        );
    }

    #[test]
    fn a_missing_variable_aborts_rendering() {
        let err = render("email-otp", "en", &vars(&[("username", "jdoe")]));
        assert_eq!(err, Err(TemplateError::MissingVariable { template: "email-otp".into(), variable: "otp".into() }));
    }

    #[test]
    fn unknown_language_falls_back_to_english() {
        let v = vars(&[("username", "jdoe"), ("time", "now")]);
        assert_eq!(render("password-changed", "fr", &v).map(|m| m.subject), Ok("Your password was changed".into()));
    }
}
