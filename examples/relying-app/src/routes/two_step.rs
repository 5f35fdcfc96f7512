//! The login's second step: Gatehouse's widget or a server-to-server request, then the exchange of Gatehouse's
//! one-time token. Only a token issued for this very user finishes the login; whenever Gatehouse cannot say
//! yes, the person stays at this step.

use std::net::SocketAddr;

use axum::extract::{ConnectInfo, Form, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;

use crate::app::AppState;
use crate::config::TwoStepMode;
use crate::db::{self, Session};
use crate::error::AppError;
use crate::gatehouse::GatehouseError;
use crate::html::{self, escape};
use crate::session::{self, Visitor};

/// Why the person is (back) at the second step. Travels in the query by name, so no text of a link is shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Problem {
    Denied,
    CodeRequired,
    CodeInvalid,
    Timeout,
    Locked,
    NotEnrolled,
    Unavailable,
    TokenRefused,
    WrongPerson,
}

const PROBLEMS: [(Problem, &str); 9] = [
    (Problem::Denied, "denied"),
    (Problem::CodeRequired, "code-required"),
    (Problem::CodeInvalid, "code-invalid"),
    (Problem::Timeout, "timeout"),
    (Problem::Locked, "locked"),
    (Problem::NotEnrolled, "not-enrolled"),
    (Problem::Unavailable, "unavailable"),
    (Problem::TokenRefused, "token-refused"),
    (Problem::WrongPerson, "wrong-person"),
];

impl Problem {
    fn from_query(name: &str) -> Option<Self> {
        PROBLEMS.iter().find(|(_, n)| *n == name).map(|(p, _)| *p)
    }

    fn query_name(self) -> &'static str {
        PROBLEMS.iter().find(|(p, _)| *p == self).map_or("unavailable", |(_, n)| n)
    }

    fn of(error: &GatehouseError) -> Self {
        match error {
            GatehouseError::ApprovalDenied => Self::Denied,
            GatehouseError::TokenRequired => Self::CodeRequired,
            GatehouseError::TokenInvalid => Self::CodeInvalid,
            GatehouseError::ApprovalTimeout => Self::Timeout,
            GatehouseError::UserLocked => Self::Locked,
            GatehouseError::NotEnrolled => Self::NotEnrolled,
            _ => Self::Unavailable,
        }
    }

    fn message(self) -> &'static str {
        match self {
            Self::Denied => "The request was denied on your phone. Type a code from the app to continue.",
            Self::CodeRequired => {
                "A request was denied on your phone earlier, so a code from the app is needed now. \
                 Type the code the app shows."
            }
            Self::CodeInvalid => "That code is wrong or was already used. Type the code the app shows now.",
            Self::Timeout => "Your phone did not answer in time. Send a new request, or type a code from the app.",
            Self::Locked => "Two-step verification is locked after too many failed attempts. Please contact support.",
            Self::NotEnrolled => "The authenticator is no longer set up for your account here. Please contact support.",
            Self::Unavailable => "Two-step verification is unavailable, try again later.",
            Self::TokenRefused => "That approval has expired or was already used. Please try again.",
            Self::WrongPerson => "That approval was for another account. Please try again.",
        }
    }

    fn status(self) -> StatusCode {
        if self == Self::Unavailable { StatusCode::SERVICE_UNAVAILABLE } else { StatusCode::OK }
    }
}

#[derive(Deserialize)]
pub struct ProblemQuery {
    problem: Option<String>,
}

#[derive(Deserialize)]
pub struct CodeForm {
    #[serde(default)]
    code: String,
}

#[derive(Deserialize)]
pub struct CallbackQuery {
    token: Option<String>,
}

/// The session of a login that waits for its second step, or where to send the visitor instead.
fn pending(visitor: &Visitor) -> Result<&Session, Redirect> {
    match &visitor.session {
        None => Err(Redirect::to("/login")),
        Some(s) if !s.second_step_pending() => Err(Redirect::to("/account")),
        Some(s) => Ok(s),
    }
}

pub async fn show(
    State(state): State<AppState>,
    ConnectInfo(client): ConnectInfo<SocketAddr>,
    visitor: Visitor,
    Query(query): Query<ProblemQuery>,
) -> Response {
    let session = match pending(&visitor) {
        Ok(s) => s,
        Err(elsewhere) => return elsewhere.into_response(),
    };
    let problem = query.problem.as_deref().and_then(Problem::from_query);
    render(&state, session, &visitor.csrf, &client.ip().to_string(), problem).await
}

/// A press of "send a request" (no code) or a typed code, checked by this server with Gatehouse.
pub async fn submit(
    State(state): State<AppState>,
    ConnectInfo(client): ConnectInfo<SocketAddr>,
    visitor: Visitor,
    Form(form): Form<CodeForm>,
) -> Result<Response, AppError> {
    let session = match pending(&visitor) {
        Ok(s) => s,
        Err(elsewhere) => return Ok(elsewhere.into_response()),
    };
    let ip = client.ip().to_string();
    let code = Some(form.code.trim()).filter(|c| !c.is_empty());
    match state.gatehouse.authenticate(&session.email, &ip, code).await {
        Ok(approval) => finish(&state, session, &approval.token, &ip).await,
        Err(e) => {
            let problem = Problem::of(&e);
            log_refusal(session, &e);
            Ok(render(&state, session, &visitor.csrf, &ip, Some(problem)).await)
        }
    }
}

/// Where the widget sends the browser after an approval, with a one-time token.
pub async fn callback(
    State(state): State<AppState>,
    ConnectInfo(client): ConnectInfo<SocketAddr>,
    visitor: Visitor,
    Query(query): Query<CallbackQuery>,
) -> Result<Response, AppError> {
    let session = match pending(&visitor) {
        Ok(s) => s,
        Err(elsewhere) => return Ok(elsewhere.into_response()),
    };
    match query.token.as_deref().map(str::trim).filter(|t| !t.is_empty()) {
        Some(token) => finish(&state, session, token, &client.ip().to_string()).await,
        None => Ok(back(Problem::TokenRefused)),
    }
}

/// Redeems Gatehouse's token. It must name this session's user: a token of somebody else's approval (copied,
/// or from another tab) never logs anyone in.
async fn finish(state: &AppState, session: &Session, token: &str, ip: &str) -> Result<Response, AppError> {
    let owner = match state.gatehouse.token(token, &session.public_id, ip).await {
        Ok(owner) => owner,
        Err(e) => {
            log_refusal(session, &e);
            let problem =
                if matches!(e, GatehouseError::TokenInvalid) { Problem::TokenRefused } else { Problem::of(&e) };
            return Ok(back(problem));
        }
    };
    if !owner.email.as_deref().is_some_and(|email| email.trim().eq_ignore_ascii_case(&session.email)) {
        let gatehouse_user = owner.unloq_id.as_str();
        tracing::warn!(user_id = session.user_id, gatehouse_user, "refused a token issued for someone else");
        return Ok(back(Problem::WrongPerson));
    }
    let new_id = session::random_token();
    if !db::complete_second_step(&state.db, &session.id, &new_id, &session::random_token()).await? {
        // Another request finished (or ended) this login first and holds the new session id.
        return Ok(Redirect::to("/login").into_response());
    }
    tracing::info!(
        user_id = session.user_id,
        approval_id = owner.approval_id.as_deref().unwrap_or("-"),
        method = owner.method.as_deref().unwrap_or("-"),
        "second step passed"
    );
    Ok(session::with_session_cookie(Redirect::to("/account"), &new_id))
}

fn back(problem: Problem) -> Response {
    Redirect::to(&format!("/login/two-step?problem={}", problem.query_name())).into_response()
}

fn log_refusal(session: &Session, error: &GatehouseError) {
    match error {
        GatehouseError::Other { .. } | GatehouseError::Unavailable(_) => {
            tracing::error!(user_id = session.user_id, error = %error, "second step: Gatehouse call failed");
        }
        _ => tracing::info!(user_id = session.user_id, refusal = %error, "second step refused"),
    }
}

async fn render(state: &AppState, session: &Session, csrf: &str, ip: &str, problem: Option<Problem>) -> Response {
    let mut problem = problem;
    let intro = format!("<p>You are logging in as <strong>{}</strong>.</p>", escape(&session.email));
    let main = match state.two_step {
        TwoStepMode::Widget => match state.gatehouse.widget_ticket(&session.email, ip).await {
            Ok(ticket) => format!(
                "<p>Confirm on your phone: pick the number shown below in the Gatehouse authenticator.</p>\
                 <div id=\"gatehouse-widget\"></div>\
                 <script src=\"{src}\" data-app=\"{app}\" data-ticket=\"{ticket}\"></script>\
                 <hr><h2>Use a code from the app instead</h2>{form}",
                src = escape(&state.gatehouse.widget_script_url()),
                app = escape(&ticket.app),
                ticket = escape(&ticket.ticket),
                form = code_form(csrf, false),
            ),
            Err(e) => {
                log_refusal(session, &e);
                problem = problem.or(Some(Problem::Unavailable));
                format!("<h2>Use a code from the app instead</h2>{}", code_form(csrf, false))
            }
        },
        TwoStepMode::Server => code_form(csrf, true),
    };
    let body = format!(
        "{intro}{problem}{main}<hr>{cancel}",
        problem = problem.map(|p| html::error(p.message())).unwrap_or_default(),
        cancel = html::button_form("/logout", csrf, "Cancel and log out", true),
    );
    let status = problem.map_or(StatusCode::OK, Problem::status);
    (status, html::page("Two-step verification", &body)).into_response()
}

/// The server-to-server form: with `push`, a button that sends a request to the phone (the call waits for the
/// decision); always a field for a code from the authenticator.
fn code_form(csrf: &str, push: bool) -> String {
    let (push_button, label) = if push {
        (
            "<p>Press the button, then approve the request on your phone (this page waits up to 30 seconds).</p>\
             <button name=\"send\" value=\"push\">Send a request to my phone</button>",
            "or type a code from the authenticator",
        )
    } else {
        ("", "Code from the authenticator")
    };
    format!(
        "<form method=\"post\" action=\"/login/two-step\">{csrf}{push_button}\
         <label for=\"code\">{label}</label>\
         <input id=\"code\" name=\"code\" type=\"text\" inputmode=\"numeric\" autocomplete=\"one-time-code\" \
         maxlength=\"16\"{required}>\
         <button>Continue with the code</button></form>",
        csrf = html::csrf_field(csrf),
        required = if push { "" } else { " required" },
    )
}
