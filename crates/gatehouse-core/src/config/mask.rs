//! Masking secrets in configuration values shown to an operator (`gatehouse config show`): keys that hold a
//! secret, passwords in URLs, and query parameters (an SMS gateway URL may carry its key).

/// `value` (JSON text) as it may be shown for `key`.
pub fn masked(key: &str, value: &str) -> String {
    let leaf = key.rsplit('.').next().unwrap_or(key);
    let secret_key = !leaf.ends_with("_file")
        && (leaf.contains("secret") || leaf.contains("password") || leaf.contains("token") || leaf == "key");
    if value == "null" || value == "\"\"" {
        return value.to_owned();
    }
    if secret_key {
        return "\"***\"".to_owned();
    }
    match serde_json::from_str::<String>(value) {
        Ok(text) if text.contains("://") => serde_json::Value::String(mask_url(&text)).to_string(),
        _ => value.to_owned(),
    }
}

/// A URL without its password and with its query values hidden.
fn mask_url(url: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((b, q)) => (b, Some(q)),
        None => (url, None),
    };
    let base = match (base.find("://"), base.rfind('@')) {
        (Some(scheme_end), Some(at)) if at > scheme_end => {
            let creds = &base[scheme_end + 3..at];
            match creds.split_once(':') {
                Some((user, _)) => format!("{}{user}:***{}", &base[..scheme_end + 3], &base[at..]),
                None => base.to_owned(),
            }
        }
        _ => base.to_owned(),
    };
    match query {
        Some(q) => {
            let hidden: Vec<String> = q
                .split('&')
                .map(|pair| pair.split_once('=').map_or(pair.to_owned(), |(k, _)| format!("{k}=***")))
                .collect();
            format!("{base}?{}", hidden.join("&"))
        }
        None => base,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_masked_and_the_rest_shown() {
        assert_eq!(masked("server.secret_key", "\"abc\""), "\"***\"");
        assert_eq!(masked("messaging.smtp.password", "\"pw\""), "\"***\"");
        assert_eq!(masked("messaging.sms.bearer_token_file", "\"/run/t\""), "\"/run/t\"", "a path is no secret");
        assert_eq!(masked("server.secret_key", "null"), "null");
        assert_eq!(masked("storage.url", "\"postgres://gh:s3cret@db:5432/gh\""), "\"postgres://gh:***@db:5432/gh\"");
        assert_eq!(
            masked("messaging.sms.url", "\"https://sms.example/send?key=abc&from=GH\""),
            "\"https://sms.example/send?key=***&from=***\""
        );
        assert_eq!(masked("server.bind", "\"127.0.0.1:8080\""), "\"127.0.0.1:8080\"");
        assert_eq!(masked("lockout.max_failed_attempts", "3"), "3");
    }
}
