//! `/login` with the application's own password, and `/logout`.

use axum::extract::{Form, State};
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Redirect, Response};
use serde::Deserialize;

use crate::app::AppState;
use crate::error::AppError;
use crate::routes::signup::is_email;
use crate::session::Visitor;
use crate::{db, html, passwords, session};

#[derive(Deserialize)]
pub struct LoginForm {
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
    Form(form): Form<LoginForm>,
) -> Result<Response, AppError> {
    let email = form.email.trim();
    let user = if is_email(email) { db::find_user(&state.db, email).await? } else { None };
    // An unknown address costs the same hashing as a known one: the time does not tell who has an account.
    let matches = form.password.chars().count() <= passwords::MAX_LENGTH
        && state.passwords.verify(form.password, user.as_ref().map(|u| u.password_hash.clone())).await?;
    match user.filter(|_| matches) {
        Some(user) => session::log_in(&state, visitor.session.as_ref(), &user).await,
        None => {
            let refused = page(&visitor.csrf, email, Some("Wrong email address or password."));
            Ok((StatusCode::UNAUTHORIZED, refused).into_response())
        }
    }
}

pub async fn logout(State(state): State<AppState>, visitor: Visitor) -> Result<Response, AppError> {
    if let Some(session) = &visitor.session {
        db::delete_session(&state.db, &session.id).await?;
    }
    Ok(session::without_session_cookie(Redirect::to("/")))
}

fn page(csrf: &str, email: &str, problem: Option<&str>) -> Html<String> {
    let body = format!(
        "{problem}<form method=\"post\" action=\"/login\">{csrf}\
         <label for=\"email\">Email address</label>\
         <input id=\"email\" name=\"email\" type=\"email\" autocomplete=\"username\" required value=\"{email}\">\
         <label for=\"password\">Password</label>\
         <input id=\"password\" name=\"password\" type=\"password\" autocomplete=\"current-password\" required>\
         <button>Log in</button></form>\
         <p>No account yet? <a href=\"/signup\">Create one</a>.</p>",
        problem = problem.map(html::error).unwrap_or_default(),
        csrf = html::csrf_field(csrf),
        email = html::escape(email),
    );
    html::page("Log in", &body)
}
