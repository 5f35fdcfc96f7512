//! Message templates: every mail, SMS and letter comes from a template file, rendered with minijinja.
//!
//! Built-in templates (English and German) live in `crates/gatehouse-core/templates/` as `<name>.<lang>.txt`;
//! an operator overrides one by dropping a file of the same name into `messaging.templates_dir`. A mail
//! template starts with a `Subject:` line and a blank line. Rendering is strict: a template that uses a
//! variable the message does not provide fails, so a message with a hole in it is never sent.

use std::collections::BTreeMap;
use std::path::Path;

use minijinja::{Environment, UndefinedBehavior, Value};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RenderedMessage {
    pub subject: String,
    pub body: String,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum TemplateError {
    #[error("unknown template `{0}`")]
    UnknownTemplate(String),
    #[error("template `{template}`: {detail}")]
    Render { template: String, detail: String },
    #[error("template `{template}` uses {}, which the message does not provide", .variables.join(", "))]
    MissingVariables { template: String, variables: Vec<String> },
    #[error("mail template `{0}` must start with a `Subject:` line followed by a blank line")]
    NoSubject(String),
    #[error("template directory {dir}: {detail}")]
    Directory { dir: String, detail: String },
}

/// Where a message goes, which decides the template's shape.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Channel {
    Mail,
    Sms,
    Letter,
}

/// A message Gatehouse sends, and the variables it provides to its template.
pub struct Known {
    pub name: &'static str,
    pub channel: Channel,
    pub variables: &'static [&'static str],
}

pub const KNOWN: &[Known] = &[
    Known { name: "password-reset-otp", channel: Channel::Mail, variables: &["username", "otp", "minutes"] },
    Known { name: "email-otp", channel: Channel::Mail, variables: &["username", "otp", "minutes"] },
    Known { name: "password-changed", channel: Channel::Mail, variables: &["username", "time"] },
    Known { name: "reset-link", channel: Channel::Mail, variables: &["username", "link", "minutes"] },
    Known { name: "mtan-otp", channel: Channel::Sms, variables: &["otp", "minutes"] },
    Known { name: "sms-otp", channel: Channel::Sms, variables: &["otp", "minutes"] },
    Known { name: "password-letter", channel: Channel::Letter, variables: &["username", "name", "password", "date"] },
    Known { name: "registration-otp", channel: Channel::Mail, variables: &["otp", "minutes"] },
    Known { name: "registration-notice", channel: Channel::Mail, variables: &["minutes"] },
    Known { name: "registration-sms-otp", channel: Channel::Sms, variables: &["otp", "minutes"] },
    Known { name: "registration-sms-notice", channel: Channel::Sms, variables: &["minutes"] },
];

pub const LANGUAGES: &[&str] = &["en", "de"];

macro_rules! builtin {
    ($($name:literal),+ $(,)?) => {
        &[$(
            ($name, "en", include_str!(concat!("../templates/", $name, ".en.txt"))),
            ($name, "de", include_str!(concat!("../templates/", $name, ".de.txt"))),
        )+]
    };
}

const BUILTIN: &[(&str, &str, &str)] = builtin!(
    "password-reset-otp",
    "email-otp",
    "password-changed",
    "reset-link",
    "mtan-otp",
    "sms-otp",
    "password-letter",
    "registration-otp",
    "registration-notice",
    "registration-sms-otp",
    "registration-sms-notice",
);

pub fn is_supported_language(lang: &str) -> bool {
    LANGUAGES.contains(&lang)
}

/// The language of messages for `user`: its `language` item if supported, else `default`.
pub fn language_for(user: &crate::user::User, default: &str) -> String {
    user.context_item("language").filter(|l| is_supported_language(l)).unwrap_or(default).to_owned()
}

fn known(name: &str) -> Option<&'static Known> {
    KNOWN.iter().find(|k| k.name == name)
}

pub fn is_known_template(name: &str) -> bool {
    known(name).is_some()
}

/// Whether `name` is a known template for `channel`.
pub fn is_template_for(name: &str, channel: Channel) -> bool {
    known(name).is_some_and(|k| k.channel == channel)
}

/// Where a template's text came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    BuiltIn,
    Override,
}

/// Every template in every language: the built-ins with an operator's overrides on top.
pub struct Templates {
    sources: BTreeMap<(String, String), (String, Origin)>,
}

/// A rendering environment: strict about undefined variables; mail bodies end with their newline, as written,
/// and `{% if %}` lines leave no blank line behind.
fn environment<'s>() -> Environment<'s> {
    let mut env = Environment::new();
    env.set_undefined_behavior(UndefinedBehavior::Strict);
    if let Ok(syntax) = minijinja::syntax::SyntaxConfig::builder().keep_trailing_newline(true).trim_blocks(true).build()
    {
        env.set_syntax(syntax);
    }
    env
}

impl std::fmt::Debug for Templates {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Templates").field("templates", &self.sources.len()).finish_non_exhaustive()
    }
}

impl Default for Templates {
    fn default() -> Self {
        Self::builtin()
    }
}

impl Templates {
    pub fn builtin() -> Self {
        let sources = BUILTIN
            .iter()
            .map(|(name, lang, text)| (((*name).to_owned(), (*lang).to_owned()), ((*text).to_owned(), Origin::BuiltIn)))
            .collect();
        Self { sources }
    }

    /// The built-ins, with every `<name>.<lang>.txt` of `dir` in place of the built-in of that name. Any other
    /// file is an error, so a misspelt override is noticed instead of silently ignored.
    pub fn load(dir: Option<&Path>) -> Result<Self, TemplateError> {
        let mut templates = Self::builtin();
        let Some(dir) = dir else { return Ok(templates) };
        let fail = |detail: String| TemplateError::Directory { dir: dir.display().to_string(), detail };
        let entries = std::fs::read_dir(dir).map_err(|e| fail(e.to_string()))?;
        for entry in entries {
            let path = entry.map_err(|e| fail(e.to_string()))?.path();
            let file = path.file_name().and_then(|n| n.to_str()).unwrap_or_default().to_owned();
            if file.starts_with('.') || path.is_dir() {
                continue;
            }
            let parsed = file.strip_suffix(".txt").and_then(|stem| stem.rsplit_once('.'));
            let Some((name, lang)) = parsed.filter(|(n, l)| is_known_template(n) && is_supported_language(l)) else {
                return Err(fail(format!(
                    "`{file}` is not <template>.<language>.txt for a known template ({}) and language ({})",
                    KNOWN.iter().map(|k| k.name).collect::<Vec<_>>().join(", "),
                    LANGUAGES.join(", ")
                )));
            };
            let text = std::fs::read_to_string(&path).map_err(|e| fail(format!("{file}: {e}")))?;
            templates.sources.insert((name.to_owned(), lang.to_owned()), (text, Origin::Override));
        }
        Ok(templates)
    }

    /// The source of `name` in `lang`, falling back to English for a language without a translation.
    fn source(&self, name: &str, lang: &str) -> Result<&str, TemplateError> {
        self.sources
            .get(&(name.to_owned(), lang.to_owned()))
            .or_else(|| self.sources.get(&(name.to_owned(), "en".to_owned())))
            .map(|(text, _)| text.as_str())
            .ok_or_else(|| TemplateError::UnknownTemplate(name.to_owned()))
    }

    pub fn origin(&self, name: &str, lang: &str) -> Option<Origin> {
        self.sources.get(&(name.to_owned(), lang.to_owned())).map(|(_, o)| *o)
    }

    fn fill(&self, name: &str, text: &str, vars: &BTreeMap<&str, String>) -> Result<String, TemplateError> {
        let render_error =
            |e: minijinja::Error| TemplateError::Render { template: name.to_owned(), detail: describe(&e) };
        let env = environment();
        let template = env.template_from_str(text).map_err(render_error)?;
        let globals: Vec<&str> = env.globals().map(|(g, _)| g).collect();
        let mut missing: Vec<String> = template
            .undeclared_variables(false)
            .into_iter()
            .filter(|v| !vars.contains_key(v.as_str()) && !globals.contains(&v.as_str()))
            .collect();
        if !missing.is_empty() {
            missing.sort();
            return Err(TemplateError::MissingVariables { template: name.to_owned(), variables: missing });
        }
        let ctx: BTreeMap<&str, Value> = vars.iter().map(|(k, v)| (*k, Value::from(v.as_str()))).collect();
        template.render(Value::from(ctx)).map_err(render_error)
    }

    /// A mail: the `Subject:` line and the body.
    pub fn render_mail(
        &self,
        name: &str,
        lang: &str,
        vars: &BTreeMap<&str, String>,
    ) -> Result<RenderedMessage, TemplateError> {
        let text = self.source(name, lang)?;
        let (subject, body) = split_subject(text).ok_or_else(|| TemplateError::NoSubject(name.to_owned()))?;
        Ok(RenderedMessage {
            subject: self.fill(name, subject, vars)?.trim().to_owned(),
            body: self.fill(name, body, vars)?,
        })
    }

    /// An SMS or a letter: the whole text (an SMS without trailing blanks).
    pub fn render_text(&self, name: &str, lang: &str, vars: &BTreeMap<&str, String>) -> Result<String, TemplateError> {
        let text = self.fill(name, self.source(name, lang)?, vars)?;
        Ok(match known(name).map(|k| k.channel) {
            Some(Channel::Sms) => text.trim_end().to_owned(),
            _ => text,
        })
    }

    /// Renders every template in every language once with the variables its message provides; the problems
    /// found (`config check` reports them).
    pub fn check(&self) -> Vec<TemplateError> {
        let mut problems = Vec::new();
        for k in KNOWN {
            let vars: BTreeMap<&str, String> = k.variables.iter().map(|v| (*v, format!("<{v}>"))).collect();
            for lang in LANGUAGES {
                let result = match k.channel {
                    Channel::Mail => self.render_mail(k.name, lang, &vars).map(|_| ()),
                    Channel::Sms | Channel::Letter => self.render_text(k.name, lang, &vars).map(|_| ()),
                };
                if let Err(e) = result {
                    let e = match e {
                        TemplateError::Render { template, detail } => {
                            TemplateError::Render { template: format!("{template}.{lang}"), detail }
                        }
                        TemplateError::MissingVariables { template, variables } => {
                            TemplateError::MissingVariables { template: format!("{template}.{lang}"), variables }
                        }
                        other => other,
                    };
                    problems.push(e);
                }
            }
        }
        problems
    }
}

/// `Subject: …` + blank line + body.
fn split_subject(text: &str) -> Option<(&str, &str)> {
    let rest = text.strip_prefix("Subject:")?;
    let (subject, body) = rest.split_once('\n')?;
    let body = body.strip_prefix("\r\n").or_else(|| body.strip_prefix('\n'))?;
    Some((subject, body))
}

/// A render error in one line, naming the undefined variable where that is the cause.
fn describe(e: &minijinja::Error) -> String {
    let mut text = e.to_string();
    if e.kind() == minijinja::ErrorKind::UndefinedError {
        text = format!("uses a variable the message does not provide ({text})");
    }
    text.replace('\n', " ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars(pairs: &[(&'static str, &str)]) -> BTreeMap<&'static str, String> {
        pairs.iter().map(|(k, v)| (*k, (*v).to_owned())).collect()
    }

    #[test]
    fn every_builtin_template_renders_in_every_language() {
        assert_eq!(Templates::builtin().check(), vec![]);
        let t = Templates::builtin();
        let v = vars(&[("username", "jdoe"), ("otp", "12345678"), ("minutes", "10")]);
        let de = t.render_mail("password-reset-otp", "de", &v).unwrap();
        assert!(de.body.contains("Hallo jdoe") && de.body.contains("12345678"), "{de:?}");
        assert_eq!(t.render_mail("password-reset-otp", "en", &v).unwrap().subject, "Your password reset code");
        assert_eq!(
            t.render_text("mtan-otp", "en", &v).unwrap(),
            "Your Gatehouse login code: 12345678 (valid 10 min). Never share it."
        );
    }

    #[test]
    fn a_missing_variable_aborts_rendering() {
        let err = Templates::builtin().render_mail("email-otp", "en", &vars(&[("username", "jdoe")]));
        let missing = TemplateError::MissingVariables {
            template: "email-otp".into(),
            variables: vec!["minutes".into(), "otp".into()],
        };
        assert_eq!(err, Err(missing));
    }

    #[test]
    fn unknown_language_falls_back_to_english() {
        let v = vars(&[("username", "jdoe"), ("time", "now")]);
        let subject = Templates::builtin().render_mail("password-changed", "fr", &v).map(|m| m.subject);
        assert_eq!(subject, Ok("Your password was changed".into()));
    }

    #[test]
    fn overrides_replace_builtins_and_are_checked() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("email-otp.en.txt"), "Subject: Code {{ otp }}\n\nHi {{ usernme }}\n").unwrap();
        let t = Templates::load(Some(dir.path())).unwrap();
        assert_eq!(t.origin("email-otp", "en"), Some(Origin::Override));
        assert_eq!(t.origin("email-otp", "de"), Some(Origin::BuiltIn));
        let problems = t.check();
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert_eq!(problems[0].to_string(), "template `email-otp.en` uses usernme, which the message does not provide");

        std::fs::write(dir.path().join("email-otp.en.txt"), "Subject: Code {{ otp }}\n\nHi {{ username }}\n").unwrap();
        let t = Templates::load(Some(dir.path())).unwrap();
        let v = vars(&[("username", "jdoe"), ("otp", "42"), ("minutes", "1")]);
        assert_eq!(
            t.render_mail("email-otp", "en", &v).unwrap(),
            RenderedMessage { subject: "Code 42".into(), body: "Hi jdoe\n".into() }
        );

        std::fs::write(dir.path().join("emial-otp.en.txt"), "x").unwrap();
        assert!(matches!(Templates::load(Some(dir.path())), Err(TemplateError::Directory { .. })));
    }
}
