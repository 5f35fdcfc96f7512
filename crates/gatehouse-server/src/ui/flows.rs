//! The flow pages: a second client of the flow engine. Each form post becomes the same `Action` the REST API
//! would build and runs through the same path (`flow_session::run`: cookies, leases, rate limits, padding), and
//! the REST answer is rendered as a page — so a page tells exactly what the API tells, no more (a real and an
//! unknown account get the same bytes, token values aside).

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use gatehouse_core::config::Validator;
use gatehouse_core::flow::Action;
use gatehouse_core::flow::session::FlowKind;
use minijinja::Value;
use serde::Deserialize;

use super::page::{Ctx, FlowView, Form, carry};
use crate::api::flow_session;
use crate::extract::ClientIp;
use crate::state::AppState;

#[derive(Debug, Deserialize)]
pub struct PageQuery {
    pub lang: Option<String>,
    /// An email link's token.
    pub token: Option<String>,
    /// Show the running flow where it stands (after a link's token was taken), instead of starting anew.
    #[serde(rename = "continue")]
    pub resume: Option<String>,
}

/// Which flow a page drives.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Area {
    Login,
    SelfService,
    Registration,
}

impl Area {
    fn kind(self) -> FlowKind {
        match self {
            Self::Login => FlowKind::Authentication,
            Self::SelfService => FlowKind::PublicSelfService,
            Self::Registration => FlowKind::SelfRegistration,
        }
    }

    fn name(self) -> &'static str {
        match self {
            Self::Login => "login",
            Self::SelfService => "self-service",
            Self::Registration => "registration",
        }
    }

    fn title(self) -> &'static str {
        match self {
            Self::Login => "page.login",
            Self::SelfService => "page.self_service",
            Self::Registration => "page.registration",
        }
    }
}

/// Runs `action` on the page's flow as the REST API would. A selection's answer names no options (an API client
/// asks for them with `selection/options/retrieve`): the page asks at once, as such a client would.
async fn call(state: &AppState, headers: &HeaderMap, ip: Option<String>, kind: FlowKind, action: Action) -> FlowView {
    let view = run(state, headers, ip.clone(), kind, action).await;
    with_options(state, headers, ip, kind, view).await
}

/// A selection's answer with its options, asked for as an API client would.
async fn with_options(
    state: &AppState,
    headers: &HeaderMap,
    ip: Option<String>,
    kind: FlowKind,
    mut view: FlowView,
) -> FlowView {
    if view.step.as_deref() == Some("SELECTION_REQUIRED") && !view.attributes.contains_key("options") {
        let headers = carry(headers, &view.cookies);
        let options = run(state, &headers, ip, kind, Action::RetrieveOptions).await;
        if let Some(o) = options.attributes.get("options") {
            view.attributes.insert("options".into(), o.clone());
        }
        view.cookies.extend(options.cookies);
    }
    view
}

async fn run(state: &AppState, headers: &HeaderMap, ip: Option<String>, kind: FlowKind, action: Action) -> FlowView {
    let response = match flow_session::run(state, headers, ip, kind, action).await {
        Ok(r) => r,
        Err(e) => e.into_response(),
    };
    FlowView::read(response).await
}

/// Starts flow `flow_id` (the REST `select`).
async fn start(state: &AppState, headers: &HeaderMap, ip: Option<String>, kind: FlowKind, flow_id: &str) -> FlowView {
    let response = match flow_session::start(state, headers, ip.clone(), kind, flow_id, None, None).await {
        Ok(started) => started.response,
        Err(e) => e.into_response(),
    };
    with_options(state, headers, ip, kind, FlowView::read(response).await).await
}

/// The action a form's `op` asks for, with its fields.
fn action_of(area: Area, form: &Form) -> Option<Action> {
    let field = |name: &str| form.get(name).cloned().unwrap_or_default();
    let otp = || field("otp").chars().take(64).collect::<String>();
    Some(match (area, form.get("op").map(String::as_str)?) {
        (Area::Login, "password") => Action::CheckPassword {
            username: form.get("username").filter(|u| !u.trim().is_empty()).cloned(),
            password: field("password"),
        },
        (Area::SelfService, "identify") => Action::Identify { username: field("username") },
        (_, "totp") => Action::CheckTotp { otp: otp() },
        (_, "mtan") => Action::CheckMtan { otp: otp() },
        (_, "mtan-resend") => Action::ResendMtan,
        (_, "select") => Action::SelectOption { id: field("option") },
        (_, "app-poll") => Action::PollApp,
        (_, "app-offline") => Action::OfflineChallenge,
        (_, "app-offline-check") => Action::OfflineCheck { otp: otp() },
        (_, "email-otp") => Action::CheckEmailOtp { otp: otp() },
        (_, "email-otp-resend") => Action::ResendEmailOtp,
        (Area::SelfService, "sms-otp") | (Area::Registration, "phone-otp") => Action::CheckSmsOtp { otp: otp() },
        (Area::SelfService, "sms-otp-resend") | (Area::Registration, "phone-otp-resend") => Action::ResendSmsOtp,
        (Area::SelfService, "password") => Action::SetPassword { new_password: field("new_password") },
        (Area::SelfService, "questions") => {
            let answers = (0..16).map_while(|i| form.get(&format!("answer_{i}")).cloned()).collect();
            Action::CheckSecretAnswers { answers }
        }
        (Area::SelfService, "token") => Action::CheckContinuationToken { token: field("token") },
        (Area::Registration, "password") => Action::RegisterPassword { password: field("password") },
        (Area::Registration, "activation-poll") => Action::PollActivation,
        (_, "acknowledge") => Action::Acknowledge,
        _ => return None,
    })
}

/// The password fields typed twice that must match, by op.
fn repeated_password(area: Area, form: &Form) -> Option<(&'static str, &'static str)> {
    match (area, form.get("op").map(String::as_str)) {
        (Area::SelfService, Some("password")) => Some(("new_password", "new_password_repeat")),
        (Area::Registration, Some("password")) => Some(("password", "password_repeat")),
        _ => None,
    }
}

/// The registration data step's inputs: each item of the step's answer, typed from its validators.
fn items(state: &AppState, flow_id: Option<&str>, view: &FlowView) -> Vec<Value> {
    let flow = flow_id.and_then(|id| state.config.self_registration.flow(id));
    let shown = view.attributes.get("items").and_then(|i| i.as_array()).cloned().unwrap_or_default();
    shown
        .iter()
        .filter_map(|i| {
            let name = i["name"].as_str()?;
            let def = flow.and_then(|f| f.items().find(|d| d.name == name));
            let has = |f: fn(&Validator) -> bool| def.is_some_and(|d| d.validators.iter().any(f));
            let input_type = if has(|v| matches!(v, Validator::EmailAddress)) {
                "email"
            } else if has(|v| matches!(v, Validator::PhoneNumber)) {
                "tel"
            } else if has(|v| matches!(v, Validator::Date { .. })) {
                "date"
            } else {
                "text"
            };
            let autocomplete = match name {
                "email" => "email",
                "givenname" => "given-name",
                "surname" => "family-name",
                "birthdate" => "bday",
                "town" => "address-level2",
                "phone" => "tel",
                "username" => "username",
                "language" => "language",
                _ => "off",
            };
            Some(minijinja::context! {
                name => name, required => i["required"].as_bool().unwrap_or(false),
                input_type => input_type, autocomplete => autocomplete,
            })
        })
        .collect()
}

/// Renders a flow answer as the page of its step.
fn render(
    state: &AppState,
    ctx: &mut Ctx,
    area: Area,
    action_url: &str,
    flow_id: Option<&str>,
    view: &FlowView,
    values: &Form,
) -> Response {
    ctx.cookies.extend(view.cookies.iter().cloned());
    let ui = &state.config.ui;
    let self_service = |id: &Option<String>| id.as_ref().map(|f| format!("/ui/app/self-service/flow/{f}"));
    let register = state.config.self_registration.default_flow.as_ref().map(|_| "/ui/app/registration".to_owned());
    let restart = match (area, flow_id) {
        (Area::Login, _) => "/ui/app/auth/login".to_owned(),
        (Area::SelfService, Some(id)) => format!("/ui/app/self-service/flow/{id}"),
        (Area::Registration, Some(id)) => format!("/ui/app/registration/flow/{id}"),
        _ => "/ui/app/auth/login".to_owned(),
    };
    let policy = &state.config.password_policy;
    // Never echo a secret back into the page.
    let values: Form = values
        .iter()
        .filter(|(k, _)| !matches!(k.as_str(), "csrf" | "op" | "otp" | "altcha" | "token") && !k.contains("password"))
        .filter(|(k, _)| !k.starts_with("answer_"))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    let step = view.step.clone().filter(|_| !view.ended());
    let needs_script = step.as_deref().is_some_and(|s| {
        matches!(
            s,
            "APP_2FA_POLLING_OR_OFFLINE_REQUIRED"
                | "APP_2FA_ACTIVATION_REQUIRED"
                | "USER_DATA_REGISTRATION_REQUIRED"
                | "USER_DATA_REGISTRATION_POSSIBLE"
                | "NEW_PASSWORD_REQUIRED"
                | "PASSWORD_REGISTRATION_REQUIRED"
        )
    });
    let extra = minijinja::context! {
        kind => area.name(),
        action_url => action_url,
        step => step,
        ended => view.ended(),
        restart_url => restart,
        attributes => Value::from(minijinja::value::Serde(&view.attributes)),
        errors => Value::from(minijinja::value::Serde(&view.errors)),
        values => Value::from(minijinja::value::Serde(&values)),
        lock_expiry => view.lock_expiry.clone(),
        seeded => false,
        items => items(state, flow_id, view),
        policy => minijinja::context! { min_length => policy.min_length, max_length => policy.max_length },
        links => minijinja::context! {
            forgot_password => self_service(&ui.forgot_password_flow),
            unlock => self_service(&ui.unlock_flow),
            register => register,
        },
    };
    let context = ctx.base(state, area.title(), needs_script, extra);
    let status = StatusCode::from_u16(view.status).unwrap_or(StatusCode::OK);
    ctx.respond(state, status, "flow.html", context)
}

/// A refused form (bad CSRF token, unknown op, passwords that differ): the step again, with the error.
fn refused(code: &str, pointer: Option<&str>, step: Option<&str>) -> FlowView {
    FlowView {
        status: 400,
        step: step.map(str::to_owned),
        errors: vec![serde_json::json!({ "code": code, "pointer": pointer })],
        ..FlowView::default()
    }
}

/// Handles one form post of a flow page.
async fn post_form(
    state: &AppState,
    headers: &HeaderMap,
    ip: Option<String>,
    area: Area,
    flow_id: Option<&str>,
    action_url: &str,
    form: Form,
) -> Response {
    let mut ctx = Ctx::new(state, headers, None);
    let kind = area.kind();
    if !super::csrf::valid(state, headers, ctx.secure, form.get("csrf").map(String::as_str)) {
        // The page with a fresh token; nothing ran.
        let view = call(state, headers, ip, kind, Action::Describe).await;
        let view = FlowView { status: 403, errors: vec![serde_json::json!({ "code": "CSRF_INVALID" })], ..view };
        return render(state, &mut ctx, area, action_url, flow_id, &view, &form);
    }
    if let Some((first, second)) = repeated_password(area, &form)
        && form.get(first) != form.get(second)
    {
        let step = if area == Area::Registration { "PASSWORD_REGISTRATION_REQUIRED" } else { "NEW_PASSWORD_REQUIRED" };
        let view = refused("PASSWORDS_DIFFER", Some(&format!("/{second}")), Some(step));
        return render(state, &mut ctx, area, action_url, flow_id, &view, &form);
    }
    if area == Area::Registration && form.get("op").map(String::as_str) == Some("data") {
        return registration_data(state, headers, ip, &mut ctx, flow_id, action_url, form).await;
    }
    let Some(action) = action_of(area, &form) else {
        let view = call(state, headers, ip, kind, Action::Describe).await;
        let view = FlowView { status: 400, errors: vec![serde_json::json!({ "code": "INVALID_REQUEST" })], ..view };
        return render(state, &mut ctx, area, action_url, flow_id, &view, &form);
    };
    let view = call(state, headers, ip, kind, action).await;
    if area == Area::Login && view.completed() && view.sets_cookie(flow_session::SESSION_COOKIE) {
        ctx.cookies.extend(view.cookies);
        return ctx.redirect("/ui/app/account");
    }
    render(state, &mut ctx, area, action_url, flow_id, &view, &form)
}

/// The data step: the form's items are sent as one data call and, when they pass, the step is left at once.
async fn registration_data(
    state: &AppState,
    headers: &HeaderMap,
    ip: Option<String>,
    ctx: &mut Ctx,
    flow_id: Option<&str>,
    action_url: &str,
    form: Form,
) -> Response {
    let kind = FlowKind::SelfRegistration;
    let described = call(state, headers, ip.clone(), kind, Action::Describe).await;
    let names: Vec<String> = described
        .attributes
        .get("items")
        .and_then(|i| i.as_array())
        .map(|a| a.iter().filter_map(|i| i["name"].as_str().map(str::to_owned)).collect())
        .unwrap_or_default();
    if names.is_empty() {
        return render(state, ctx, Area::Registration, action_url, flow_id, &described, &form);
    }
    let values = names
        .iter()
        .map(|n| (n.clone(), serde_json::Value::String(form.get(n).cloned().unwrap_or_default())))
        .collect();
    let captcha = form.get("altcha").filter(|c| !c.is_empty()).cloned();
    let sent = call(state, headers, ip.clone(), kind, Action::RegisterData { values, captcha }).await;
    // The call's cookie holds even when it refused the values: a started flow's first call stores it under a
    // new cookie either way.
    ctx.cookies.extend(sent.cookies.iter().cloned());
    if sent.status != 200 {
        // The step again with the errors, its items and (unless solved) the new challenge `Describe` offered.
        let view = FlowView { status: sent.status, errors: sent.errors, ..described };
        return render(state, ctx, Area::Registration, action_url, flow_id, &view, &form);
    }
    let headers = carry(headers, &sent.cookies);
    let continued = call(state, &headers, ip, kind, Action::ContinueRegistration).await;
    let view = if continued.status == 400 {
        FlowView { status: 400, errors: continued.errors, cookies: continued.cookies, ..described }
    } else {
        continued
    };
    render(state, ctx, Area::Registration, action_url, flow_id, &view, &form)
}

/// Starts a flow for a page's first visit and renders its first step.
async fn first_visit(
    state: &AppState,
    headers: &HeaderMap,
    ip: Option<String>,
    area: Area,
    flow_id: &str,
    action_url: &str,
    lang: Option<&str>,
) -> Response {
    let mut ctx = Ctx::new(state, headers, lang);
    let view = start(state, headers, ip, area.kind(), flow_id).await;
    render(state, &mut ctx, area, action_url, Some(flow_id), &view, &Form::new())
}

pub async fn login_page(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    headers: HeaderMap,
    Query(q): Query<PageQuery>,
) -> Response {
    let mut ctx = Ctx::new(&state, &headers, q.lang.as_deref());
    // A login in progress is shown where it stands; otherwise the password form (a first call starts the flow).
    let mut view = call(&state, &headers, ip, FlowKind::Authentication, Action::Describe).await;
    if view.step.is_none() || view.ended() {
        view = FlowView { status: 200, step: Some("PASSWORD_REQUIRED".into()), ..FlowView::default() };
    }
    render(&state, &mut ctx, Area::Login, "/ui/app/auth/login", None, &view, &Form::new())
}

pub async fn login_post(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    headers: HeaderMap,
    axum::Form(form): axum::Form<Form>,
) -> Response {
    post_form(&state, &headers, ip, Area::Login, None, "/ui/app/auth/login", form).await
}

pub async fn self_service_page(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    headers: HeaderMap,
    Path(flow_id): Path<String>,
    Query(q): Query<PageQuery>,
) -> Response {
    let url = format!("/ui/app/self-service/flow/{flow_id}");
    if state.config.public_self_service.flow(&flow_id).is_none() {
        return super::not_found(&state, &headers);
    }
    if q.resume.is_some() {
        return self_service_resume(&state, &headers, ip, &flow_id, q.lang.as_deref()).await;
    }
    let Some(token) = q.token else {
        return first_visit(&state, &headers, ip, Area::SelfService, &flow_id, &url, q.lang.as_deref()).await;
    };
    // An email link: the flow starts with its token at once, and the address bar loses it (303 to the page).
    let mut ctx = Ctx::new(&state, &headers, q.lang.as_deref());
    let kind = FlowKind::PublicSelfService;
    let started = start(&state, &headers, ip.clone(), kind, &flow_id).await;
    let headers = carry(&headers, &started.cookies);
    ctx.cookies.extend(started.cookies);
    let token: String = token.chars().take(128).collect();
    let view = call(&state, &headers, ip, kind, Action::CheckContinuationToken { token }).await;
    ctx.cookies.extend(view.cookies);
    ctx.redirect(&format!("{url}?continue=1"))
}

async fn self_service_resume(
    state: &AppState,
    headers: &HeaderMap,
    ip: Option<String>,
    flow_id: &str,
    lang: Option<&str>,
) -> Response {
    let mut ctx = Ctx::new(state, headers, lang);
    let view = call(state, headers, ip, FlowKind::PublicSelfService, Action::Describe).await;
    let url = format!("/ui/app/self-service/flow/{flow_id}");
    render(state, &mut ctx, Area::SelfService, &url, Some(flow_id), &view, &Form::new())
}

pub async fn self_service_post(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    headers: HeaderMap,
    Path(flow_id): Path<String>,
    axum::Form(form): axum::Form<Form>,
) -> Response {
    let url = format!("/ui/app/self-service/flow/{flow_id}");
    post_form(&state, &headers, ip, Area::SelfService, Some(&flow_id), &url, form).await
}

fn registration_flow_of(state: &AppState, flow_id: Option<String>) -> Option<String> {
    flow_id.or_else(|| state.config.self_registration.default_flow.clone())
}

pub async fn default_registration_page(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    headers: HeaderMap,
    Query(q): Query<PageQuery>,
) -> Response {
    registration_first_visit(&state, &headers, ip, None, q.lang.as_deref()).await
}

pub async fn registration_page(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    headers: HeaderMap,
    Path(flow_id): Path<String>,
    Query(q): Query<PageQuery>,
) -> Response {
    registration_first_visit(&state, &headers, ip, Some(flow_id), q.lang.as_deref()).await
}

async fn registration_first_visit(
    state: &AppState,
    headers: &HeaderMap,
    ip: Option<String>,
    flow_id: Option<String>,
    lang: Option<&str>,
) -> Response {
    let Some(id) = registration_flow_of(state, flow_id) else {
        return super::not_found(state, headers);
    };
    if state.config.self_registration.flow(&id).is_none() {
        return super::not_found(state, headers);
    }
    let url = format!("/ui/app/registration/flow/{id}");
    first_visit(state, headers, ip, Area::Registration, &id, &url, lang).await
}

pub async fn registration_post(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    headers: HeaderMap,
    Path(id): Path<String>,
    axum::Form(form): axum::Form<Form>,
) -> Response {
    if state.config.self_registration.flow(&id).is_none() {
        return super::not_found(&state, &headers);
    }
    let url = format!("/ui/app/registration/flow/{id}");
    post_form(&state, &headers, ip, Area::Registration, Some(&id), &url, form).await
}
