//! `/signup`: an account of this application's own, with an email address and a password.

use axum::extract::{Form, State};
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Redirect, Response};
use serde::Deserialize;

use crate::app::AppState;
use crate::error::AppError;
use crate::session::Visitor;
use crate::{db, html, passwords, session};

#[derive(Deserialize)]
pub struct SignupForm {
    email: String,
    password: String,
}

pub async fn show(visitor: Visitor) -> Response {
    if visitor.session.as_ref().is_some_and(|s| !s.second_step_pending()) {
        return Redirect::to("/account").into_response();
    }
    page(&visitor.csrf, "", None).into_response()
}

pub async fn submit(
    State(state): State<AppState>,
    visitor: Visitor,
    Form(form): Form<SignupForm>,
) -> Result<Response, AppError> {
    let email = form.email.trim();
    let refuse =
        |message: &str| Ok((StatusCode::BAD_REQUEST, page(&visitor.csrf, email, Some(message))).into_response());
    if !is_email(email) {
        return refuse("Enter a valid email address.");
    }
    let length = form.password.chars().count();
    if length < passwords::MIN_LENGTH {
        return refuse("Choose a password of at least 10 characters.");
    }
    if length > passwords::MAX_LENGTH {
        return refuse("That password is too long.");
    }
    let hash = passwords::hash(form.password).await?;
    let Some(id) = db::create_user(&state.db, email, &hash).await? else {
        return refuse("An account with this email address already exists. Log in instead.");
    };
    tracing::info!(user_id = id, "account created");
    let user = db::User { id, password_hash: hash, second_factor: db::SecondFactor::None };
    session::log_in(&state, visitor.session.as_ref(), &user).await
}

/// Enough of a check to catch typing mistakes; whether the address works is the mail server's business.
pub fn is_email(value: &str) -> bool {
    let Some((local, domain)) = value.rsplit_once('@') else {
        return false;
    };
    value.len() <= 254
        && !local.is_empty()
        && domain.contains('.')
        && !domain.starts_with('.')
        && !domain.ends_with('.')
        && !value.chars().any(|c| c.is_whitespace() || c.is_control())
}

fn page(csrf: &str, email: &str, problem: Option<&str>) -> Html<String> {
    let body = format!(
        "{problem}<form method=\"post\" action=\"/signup\">{csrf}\
         <label for=\"email\">Email address</label>\
         <input id=\"email\" name=\"email\" type=\"email\" autocomplete=\"username\" required value=\"{email}\">\
         <label for=\"password\">Password (at least 10 characters)</label>\
         <input id=\"password\" name=\"password\" type=\"password\" autocomplete=\"new-password\" \
         minlength=\"10\" required>\
         <button>Create account</button></form>\
         <p>Already have an account? <a href=\"/login\">Log in</a>.</p>",
        problem = problem.map(html::error).unwrap_or_default(),
        csrf = html::csrf_field(csrf),
        email = html::escape(email),
    );
    html::page("Create an account", &body)
}

#[cfg(test)]
mod tests {
    use super::is_email;

    #[test]
    fn takes_plain_addresses_only() {
        assert!(is_email("ann@example.com"));
        assert!(!is_email("ann@example"));
        assert!(!is_email("@example.com"));
        assert!(!is_email("ann @example.com"));
        assert!(!is_email("ann@.example.com"));
    }
}
