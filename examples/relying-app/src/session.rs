//! Sessions in a cookie, the CSRF token of every form, and the gate that holds a half-finished login at the
//! second step.

use axum::body::Body;
use axum::extract::{FromRequestParts, Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use cookie::{Cookie, SameSite};
use subtle::ConstantTimeEq as _;

use crate::app::AppState;
use crate::db::{self, NewSession, SecondFactor, Session, User};
use crate::error::AppError;
use crate::html;

const SESSION_COOKIE: &str = "relying_session";
/// Visitors without a session get their forms' CSRF token in this cookie (double submit): the login form is
/// protected too, so nobody can log a victim in to an account of the attacker's.
const CSRF_COOKIE: &str = "relying_csrf";
/// Forms here are an email, a password or a code; anything bigger is not one of ours.
const FORM_LIMIT: usize = 16 * 1024;

/// Reachable without a finished login (`/healthz` does not pass the gate at all). `/logout` is among them so that
/// a half-finished login can be abandoned.
const OPEN_PATHS: [&str; 6] = ["/", "/signup", "/login", "/login/two-step", "/login/callback", "/logout"];

/// Who is asking: their session if they have one, and the CSRF token their forms must carry.
#[derive(Debug, Clone)]
pub struct Visitor {
    pub session: Option<Session>,
    pub csrf: String,
}

/// 256 random bits, URL-safe: session ids and CSRF tokens.
pub fn random_token() -> String {
    random_text::<32>()
}

fn random_text<const N: usize>() -> String {
    use rand::Rng as _;
    let mut bytes = [0u8; N];
    #[expect(clippy::disallowed_methods, reason = "the operating system's generator is what session ids need")]
    rand::rng().fill_bytes(&mut bytes);
    URL_SAFE_NO_PAD.encode(bytes)
}

/// The middleware in front of every page: finds the session, sends those who are not (fully) logged in where
/// they belong, and refuses any POST without the visitor's CSRF token.
pub async fn gate(State(state): State<AppState>, request: Request, next: Next) -> Response {
    match check(&state, request, next).await {
        Ok(response) => response,
        Err(e) => e.into_response(),
    }
}

async fn check(state: &AppState, request: Request, next: Next) -> Result<Response, AppError> {
    let session = match cookie(request.headers(), SESSION_COOKIE) {
        Some(id) => db::find_session(&state.db, &id).await?,
        None => None,
    };
    if !OPEN_PATHS.contains(&request.uri().path()) {
        match &session {
            None => return Ok(Redirect::to("/login").into_response()),
            Some(s) if s.second_step_pending() => return Ok(Redirect::to("/login/two-step").into_response()),
            Some(_) => {}
        }
    }

    let mut new_csrf_cookie = None;
    let csrf = match (&session, cookie(request.headers(), CSRF_COOKIE)) {
        (Some(s), _) => s.csrf.clone(),
        (None, Some(token)) => token,
        (None, None) => {
            let token = random_token();
            new_csrf_cookie = Some(token.clone());
            token
        }
    };

    let mut request = if request.method() == Method::POST {
        let (parts, body) = request.into_parts();
        let Ok(bytes) = axum::body::to_bytes(body, FORM_LIMIT).await else {
            return Ok(StatusCode::PAYLOAD_TOO_LARGE.into_response());
        };
        let given = form_urlencoded::parse(&bytes).find(|(k, _)| k == "csrf").map(|(_, v)| v.into_owned());
        if !given.is_some_and(|given| bool::from(given.as_bytes().ct_eq(csrf.as_bytes()))) {
            return Ok(forbidden());
        }
        Request::from_parts(parts, Body::from(bytes))
    } else {
        request
    };

    request.extensions_mut().insert(Visitor { session, csrf });
    let mut response = next.run(request).await;
    if let Some(token) = new_csrf_cookie {
        append_cookie(&mut response, Cookie::build((CSRF_COOKIE, token)));
    }
    let headers = response.headers_mut();
    // Pages show personal data and one-time forms: never from a cache, never inside another site's frame.
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    Ok(response)
}

fn forbidden() -> Response {
    let body =
        html::error("This form has expired or did not come from this site. Go back, reload the page and try again.");
    (StatusCode::FORBIDDEN, html::page("Form refused", &body)).into_response()
}

fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(Cookie::split_parse)
        .filter_map(Result::ok)
        .find(|c| c.name() == name)
        .map(|c| c.value().to_owned())
}

fn append_cookie(response: &mut Response, cookie: cookie::CookieBuilder<'static>) {
    // Not `Secure`: the example runs on http://localhost; behind HTTPS, add it.
    let cookie = cookie.http_only(true).same_site(SameSite::Lax).path("/").build();
    if let Ok(value) = HeaderValue::from_str(&cookie.to_string()) {
        response.headers_mut().append(header::SET_COOKIE, value);
    }
}

/// `response` with the session cookie set to `id`.
pub fn with_session_cookie(response: impl IntoResponse, id: &str) -> Response {
    let mut response = response.into_response();
    append_cookie(&mut response, Cookie::build((SESSION_COOKIE, id.to_owned())));
    response
}

/// `response` with the session cookie removed.
pub fn without_session_cookie(response: impl IntoResponse) -> Response {
    let mut response = response.into_response();
    let mut removal = Cookie::build((SESSION_COOKIE, "")).http_only(true).same_site(SameSite::Lax).path("/").build();
    removal.make_removal();
    if let Ok(value) = HeaderValue::from_str(&removal.to_string()) {
        response.headers_mut().append(header::SET_COOKIE, value);
    }
    response
}

/// A fresh session for `user`, whose password was just checked (or set), replacing the visitor's old one. A
/// user with a second factor gets a session that only reaches the second step.
pub async fn log_in(state: &AppState, old: Option<&Session>, user: &User) -> Result<Response, AppError> {
    if let Some(old) = old {
        db::delete_session(&state.db, &old.id).await?;
    }
    let id = random_token();
    let pending = user.second_factor != SecondFactor::None;
    db::create_session(
        &state.db,
        NewSession {
            id: &id,
            public_id: &random_text::<12>(),
            csrf: &random_token(),
            user_id: user.id,
            was_2fa: false,
            lifetime_seconds: if pending { db::PENDING_SECONDS } else { db::SESSION_SECONDS },
        },
    )
    .await?;
    tracing::info!(user_id = user.id, second_step = pending, "password accepted");
    let next = if pending { "/login/two-step" } else { "/account" };
    Ok(with_session_cookie(Redirect::to(next), &id))
}

impl<S: Send + Sync> FromRequestParts<S> for Visitor {
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, AppError> {
        parts.extensions.get::<Self>().cloned().ok_or_else(|| AppError::internal("the session middleware did not run"))
    }
}

/// A visitor who has passed every factor of their account.
pub struct SignedIn {
    pub session: Session,
    pub csrf: String,
}

impl<S: Send + Sync> FromRequestParts<S> for SignedIn {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Response> {
        let visitor = Visitor::from_request_parts(parts, state).await.map_err(IntoResponse::into_response)?;
        match visitor.session {
            Some(session) if !session.second_step_pending() => Ok(Self { session, csrf: visitor.csrf }),
            Some(_) => Err(Redirect::to("/login/two-step").into_response()),
            None => Err(Redirect::to("/login").into_response()),
        }
    }
}
