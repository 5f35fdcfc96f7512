//! Validation of registration data: one item's value against its validators, and a data step's rules across
//! items. Values are trimmed; a phone number is stored in E.164 form.

use std::collections::BTreeMap;

use crate::config::{DataItem, StepValidator, UserDataRegistrationStep, Validator};
use crate::flow::{ErrorCode, FlowError};

/// No value is longer than this, whatever the validators say.
pub const MAX_VALUE_CHARS: usize = 1024;

/// The value to store for `item`, or the detail of the first validator it fails.
pub fn check_value(item: &DataItem, raw: &str) -> Result<String, &'static str> {
    let mut value = raw.trim().to_owned();
    if value.chars().count() > MAX_VALUE_CHARS || value.chars().any(char::is_control) {
        return Err("LENGTH");
    }
    for validator in &item.validators {
        value = check(validator, value).ok_or(validator.detail())?;
    }
    Ok(value)
}

/// One validator: the (possibly normalised) value, or `None` if it fails.
fn check(validator: &Validator, value: String) -> Option<String> {
    let ok = match validator {
        Validator::Regex { pattern } => pattern.is_match(&value),
        Validator::EmailAddress => is_email(&value),
        Validator::PhoneNumber => return e164(&value),
        Validator::Length { min, max } => {
            let n = value.chars().count();
            min.is_none_or(|m| n >= m) && max.is_none_or(|m| n <= m)
        }
        Validator::Date { min, max } => {
            let date = date(&value)?;
            min.as_deref().and_then(self::date).is_none_or(|m| date >= m)
                && max.as_deref().and_then(self::date).is_none_or(|m| date <= m)
        }
        Validator::AllowedCharacters { characters } => value.chars().all(|c| characters.contains(c)),
    };
    ok.then_some(value)
}

/// An address as mail is sent to: `local@domain`, no display name, no comments.
pub fn is_email(value: &str) -> bool {
    let options = email_address::Options::default().without_display_text().without_domain_literal();
    email_address::EmailAddress::parse_with_options(value, options).is_ok() && value.contains('.')
}

/// A valid phone number in international form, as E.164.
fn e164(value: &str) -> Option<String> {
    let number = phonenumber::parse(None, value).ok()?;
    phonenumber::is_valid(&number).then(|| number.format().mode(phonenumber::Mode::E164).to_string())
}

/// A calendar date written `YYYY-MM-DD`.
pub fn date(value: &str) -> Option<chrono::NaiveDate> {
    if value.len() != 10 {
        return None;
    }
    chrono::NaiveDate::parse_from_str(value, "%Y-%m-%d").ok()
}

/// What keeps a data step from being left: required items missing, rules across items broken.
pub fn step_issues(step: &UserDataRegistrationStep, items: &BTreeMap<String, String>) -> Vec<FlowError> {
    let mut issues: Vec<FlowError> = step
        .items
        .iter()
        .filter(|i| i.required && !items.contains_key(&i.name))
        .map(|i| FlowError::item(ErrorCode::ItemRequired, &i.name, None))
        .collect();
    for rule in &step.validators {
        match rule {
            StepValidator::Equal { items: names } => {
                let values: Vec<Option<&String>> = names.iter().map(|n| items.get(n)).collect();
                let differ = values.windows(2).any(|w| w[0] != w[1]);
                if differ && let Some(last) = names.last() {
                    issues.push(FlowError::item(ErrorCode::ItemsDiffer, last, Some("EQUAL")));
                }
            }
        }
    }
    issues
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{ItemRole, Pattern};

    fn item(validators: Vec<Validator>) -> DataItem {
        DataItem { name: "x".into(), role: ItemRole::Context, required: false, validators }
    }

    #[test]
    fn each_validator_says_which_one_failed() {
        let regex = item(vec![Validator::Regex { pattern: Pattern::new("[a-z]{2,4}").unwrap() }]);
        assert_eq!(check_value(&regex, " abc "), Ok("abc".into()));
        assert_eq!(check_value(&regex, "abcde"), Err("REGEX"), "the whole value must match");
        let email = item(vec![Validator::EmailAddress]);
        assert_eq!(check_value(&email, "john.doe@example.com"), Ok("john.doe@example.com".into()));
        assert_eq!(check_value(&email, "John <john@example.com>"), Err("EMAIL_ADDRESS"));
        assert_eq!(check_value(&email, "john@localhost"), Err("EMAIL_ADDRESS"));
        let phone = item(vec![Validator::PhoneNumber]);
        assert_eq!(check_value(&phone, "+41 79 123 45 67"), Ok("+41791234567".into()));
        assert_eq!(check_value(&phone, "+41 12"), Err("PHONE_NUMBER"));
        assert_eq!(check_value(&phone, "079 123 45 67"), Err("PHONE_NUMBER"), "international form only");
        let length = item(vec![Validator::Length { min: Some(2), max: Some(3) }]);
        assert_eq!(check_value(&length, "äöü"), Ok("äöü".into()), "characters, not bytes");
        assert_eq!(check_value(&length, "a"), Err("LENGTH"));
        let date = item(vec![Validator::Date { min: Some("1900-01-01".into()), max: Some("2020-12-31".into()) }]);
        assert_eq!(check_value(&date, "1970-10-01"), Ok("1970-10-01".into()));
        assert_eq!(check_value(&date, "1970-02-30"), Err("DATE"));
        assert_eq!(check_value(&date, "2021-01-01"), Err("DATE"));
        let chars = item(vec![Validator::AllowedCharacters { characters: "abc".into() }]);
        assert_eq!(check_value(&chars, "cab"), Ok("cab".into()));
        assert_eq!(check_value(&chars, "cabd"), Err("ALLOWED_CHARACTERS"));
        assert_eq!(check_value(&item(vec![]), &"x".repeat(MAX_VALUE_CHARS + 1)), Err("LENGTH"));
        assert_eq!(check_value(&item(vec![]), "a\u{0}b"), Err("LENGTH"));
    }

    #[test]
    fn step_rules_name_missing_and_differing_items() {
        let step = UserDataRegistrationStep {
            items: vec![DataItem { required: true, ..item(vec![]) }],
            validators: vec![StepValidator::Equal { items: vec!["a".into(), "b".into()] }],
            captcha: false,
        };
        let items = BTreeMap::from([("a".to_owned(), "1".to_owned()), ("b".to_owned(), "2".to_owned())]);
        let issues = step_issues(&step, &items);
        assert_eq!(issues.len(), 2);
        assert_eq!(issues[0].pointer.as_deref(), Some("/x"));
        assert_eq!(issues[1].code, ErrorCode::ItemsDiffer);
        assert_eq!(issues[1].pointer.as_deref(), Some("/b"));
    }
}
