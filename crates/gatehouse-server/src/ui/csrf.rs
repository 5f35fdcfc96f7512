//! CSRF protection of the pages' forms: a random cookie (`gatehouse_csrf`, HttpOnly, SameSite=Strict) and in
//! each form a keyed hash of it. A cross-site page can neither read the cookie nor compute the hash; a request a
//! browser marks cross-site (`Sec-Fetch-Site`) is refused outright.

use axum::http::HeaderMap;
use subtle::ConstantTimeEq as _;

use crate::extract::{cookie, set_cookie};
use crate::state::AppState;

pub const COOKIE: &str = "gatehouse_csrf";
const PURPOSE: &str = "ui-csrf";

/// The form token of this browser, and the `Set-Cookie` value when the browser has no cookie yet.
pub fn token(state: &AppState, headers: &HeaderMap, secure: bool) -> (String, Option<String>) {
    match cookie(headers, COOKIE, secure) {
        Some(value) if value.len() >= 32 => (state.key.hash_secret(PURPOSE, &value), None),
        _ => {
            let value = gatehouse_core::random::random_token(state.random.as_ref());
            (state.key.hash_secret(PURPOSE, &value), Some(set_cookie(COOKIE, Some(&value), secure)))
        }
    }
}

/// Whether a form post carries the token of this browser's cookie.
pub fn valid(state: &AppState, headers: &HeaderMap, secure: bool, form_token: Option<&str>) -> bool {
    let cross_site = headers.get("sec-fetch-site").and_then(|v| v.to_str().ok()).is_some_and(|v| v == "cross-site");
    let (Some(value), Some(given)) = (cookie(headers, COOKIE, secure), form_token) else { return false };
    let expected = state.key.hash_secret(PURPOSE, &value);
    !cross_site && bool::from(expected.as_bytes().ct_eq(given.as_bytes()))
}
