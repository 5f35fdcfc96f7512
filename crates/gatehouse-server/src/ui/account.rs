//! The account page (`/ui/app/account`): what a logged-in user can change about their own account, through the
//! same services as the protected REST API (`gatehouse_core::protected`). Without a live session: the login.

use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use minijinja::Value;

use super::flows::PageQuery;
use super::page::{Ctx, FlowView, Form};
use crate::api::flow_session::SESSION_COOKIE;
use crate::api::protected::Authenticated;
use crate::errors::ApiError;
use crate::extract::set_cookie;
use crate::state::AppState;

/// What one post changed or needs, for the page shown after it.
#[derive(Default)]
struct Outcome {
    message: Option<&'static str>,
    errors: Vec<serde_json::Value>,
    needs_reauth: bool,
    totp: Option<Value>,
    activation: Option<Value>,
}

async fn errors_of(e: ApiError) -> Vec<serde_json::Value> {
    FlowView::read(e.into_response()).await.errors
}

async fn page(state: &AppState, ctx: &Ctx, auth: &Authenticated, outcome: Outcome, status: StatusCode) -> Response {
    let me = auth.me();
    let protected = state.protected();
    let devices = protected.devices(&me).await.unwrap_or_default();
    let devices: Vec<Value> = devices
        .iter()
        .map(|d| {
            minijinja::context! {
                id => d.id.clone(), displayName => d.display_name.clone(),
                createdAt => gatehouse_core::clock::format_timestamp(d.created_at),
            }
        })
        .collect();
    let has_totp = state.store.get_totp(&auth.user.id).await.ok().flatten().is_some_and(|t| t.confirmed);
    let questions = state.config.public_self_service.secret_questions.questions.clone();
    let extra = minijinja::context! {
        action_url => "/ui/app/account",
        user => minijinja::context! {
            username => auth.user.username.clone(),
            email => auth.user.context_item("email"),
            phone => auth.user.context_item("phone"),
            factors => auth.session.factors.clone(),
        },
        message => outcome.message,
        errors => Value::from(minijinja::value::Serde(&outcome.errors)),
        needs_reauth => outcome.needs_reauth,
        totp => outcome.totp,
        activation => outcome.activation,
        devices => devices,
        has_totp => has_totp,
        questions => questions,
        policy => minijinja::context! {
            min_length => state.config.password_policy.min_length,
            max_length => state.config.password_policy.max_length,
        },
    };
    let context = ctx.base(state, "page.account", true, extra);
    ctx.respond(state, status, "account.html", context)
}

pub async fn show(State(state): State<AppState>, headers: HeaderMap, Query(q): Query<PageQuery>) -> Response {
    let ctx = Ctx::new(&state, &headers, q.lang.as_deref());
    match Authenticated::from_headers(&headers, &state).await {
        Ok(auth) => page(&state, &ctx, &auth, Outcome::default(), StatusCode::OK).await,
        Err(_) => ctx.redirect("/ui/app/auth/login"),
    }
}

pub async fn post(State(state): State<AppState>, headers: HeaderMap, axum::Form(form): axum::Form<Form>) -> Response {
    let mut ctx = Ctx::new(&state, &headers, None);
    let Ok(auth) = Authenticated::from_headers(&headers, &state).await else {
        return ctx.redirect("/ui/app/auth/login");
    };
    if !super::csrf::valid(&state, &headers, ctx.secure, form.get("csrf").map(String::as_str)) {
        let outcome = Outcome { errors: vec![serde_json::json!({ "code": "CSRF_INVALID" })], ..Outcome::default() };
        return page(&state, &ctx, &auth, outcome, StatusCode::FORBIDDEN).await;
    }
    let field = |name: &str| form.get(name).cloned().unwrap_or_default();
    let me = auth.me();
    let protected = state.protected();
    let done = |message| Outcome { message: Some(message), ..Outcome::default() };
    let result: Result<Outcome, ApiError> = match form.get("op").map(String::as_str) {
        Some("logout") => {
            let _ = protected.logout(&me).await;
            ctx.cookies.push(set_cookie(SESSION_COOKIE, None, ctx.secure));
            return ctx.redirect("/ui/app/auth/login");
        }
        Some("password-change") if field("new_password") != field("new_password_repeat") => Ok(Outcome {
            errors: vec![serde_json::json!({ "code": "PASSWORDS_DIFFER", "pointer": "/new_password_repeat" })],
            ..Outcome::default()
        }),
        Some("password-change") => protected
            .change_password(&me, field("old_password"), field("new_password"))
            .await
            .map(|()| done("account.saved"))
            .map_err(ApiError::from),
        Some("reauthenticate") => protected
            .reauthenticate(&me, field("password"))
            .await
            .map(|()| done("account.saved"))
            .map_err(ApiError::from),
        Some("totp-enroll") => protected.enroll_totp(&me).await.map_err(ApiError::from).map(|e| Outcome {
            totp: Some(minijinja::context! { qrCode => e.qr_svg, secret => e.secret_base32 }),
            ..Outcome::default()
        }),
        Some("totp-confirm") => {
            protected.confirm_totp(&me, &field("otp")).await.map(|()| done("account.saved")).map_err(ApiError::from)
        }
        Some("totp-remove") => protected.remove_totp(&me).await.map(|()| done("account.saved")).map_err(ApiError::from),
        Some("device-activate") => {
            protected.start_device_activation(&me).await.map_err(ApiError::from).map(|a| Outcome {
                activation: Some(minijinja::context! {
                    qrCode => a.qr_code, activationUri => a.activation_uri, activationCode => a.activation_code,
                }),
                ..Outcome::default()
            })
        }
        Some("device-rename") => protected
            .rename_device(&me, &field("device"), &field("display_name"))
            .await
            .map(|_| done("account.saved"))
            .map_err(ApiError::from),
        Some("device-remove") => {
            protected.remove_device(&me, &field("device")).await.map(|()| done("account.saved")).map_err(ApiError::from)
        }
        Some("phone-set") => {
            let phone = field("phone");
            let phone = Some(phone.as_str()).filter(|p| !p.trim().is_empty());
            protected.set_phone(&me, phone).await.map(|_| done("account.saved")).map_err(ApiError::from)
        }
        Some("answers-set") => {
            let questions = &state.config.public_self_service.secret_questions.questions;
            let answers: Vec<(String, String)> = questions
                .iter()
                .enumerate()
                .filter_map(|(i, q)| {
                    form.get(&format!("answer_{i}")).filter(|a| !a.trim().is_empty()).map(|a| (q.clone(), a.clone()))
                })
                .collect();
            protected.set_secret_answers(&me, &answers).await.map(|_| done("account.saved")).map_err(ApiError::from)
        }
        _ => Ok(Outcome { errors: vec![serde_json::json!({ "code": "INVALID_REQUEST" })], ..Outcome::default() }),
    };
    let (outcome, status) = match result {
        Ok(o) => {
            let status = if o.errors.is_empty() { StatusCode::OK } else { StatusCode::BAD_REQUEST };
            (o, status)
        }
        Err(e) => {
            let errors = errors_of(e).await;
            let needs_reauth = errors.iter().any(|e| e["code"] == "REAUTHENTICATION_REQUIRED");
            (Outcome { errors, needs_reauth, ..Outcome::default() }, StatusCode::BAD_REQUEST)
        }
    };
    // A changed password may have ended the session; the page then shows the login.
    match Authenticated::from_headers(&headers, &state).await {
        Ok(auth) => page(&state, &ctx, &auth, outcome, status).await,
        Err(_) => ctx.redirect("/ui/app/auth/login"),
    }
}
