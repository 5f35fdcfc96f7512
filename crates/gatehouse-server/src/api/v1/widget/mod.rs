//! The widget (`/v1/widget.js`) and the calls it makes from the person's browser. The application's server asks
//! for a ticket naming the person (`POST /v1/widget/ticket`, with its API key); the page it renders includes the
//! script with the application's public id and that ticket. The browser calls carry no API key: they work only
//! from the application's registered origin (CORS and a check of `Origin`), for the person the ticket names.

mod code;
mod cors;
mod script;
mod start;
mod ticket;
mod wait;

use axum::http::Method;
use axum::routing::{get, post};
use gatehouse_core::applications::WidgetTicket;
use gatehouse_core::ports::Application;
use gatehouse_core::user::User;

use super::V1Error;
use crate::api::routes::{Answer, Auth, Body, Doc, Routes};
use crate::state::AppState;

pub fn routes() -> Routes {
    let browser = |summary, what| Doc::new(summary, Auth::Public, Answer::V1(what));
    Routes::new()
        .at(
            Method::POST,
            "/v1/widget/ticket",
            post(ticket::handler),
            Doc::new(
                "A ticket for the widget on the application's two-step page, naming the person it may ask (ten \
                 minutes)",
                Auth::AppKey,
                Answer::V1("api.application.widget.ticket"),
            )
            .body(Body::of::<ticket::TicketRequest>()),
        )
        .at(
            Method::GET,
            "/v1/widget.js",
            get(script::handler),
            Doc::new("The widget script, for the application's two-step page", Auth::Public, Answer::Script),
        )
        .at(
            Method::POST,
            "/v1/widget/{app}/start",
            post(start::handler).options(cors::preflight),
            browser(
                "From the widget: push a request with a number to pick on the device (or learn that a code is \
                 needed)",
                "api.application.widget.start",
            )
            .body(Body::of::<start::StartRequest>()),
        )
        .at(
            Method::POST,
            "/v1/widget/{app}/wait",
            post(wait::handler).options(cors::preflight),
            browser(
                "From the widget: wait for the person's decision; once approved, where to send the browser",
                "api.application.widget.wait",
            )
            .body(Body::of::<wait::WaitRequest>()),
        )
        .at(
            Method::POST,
            "/v1/widget/{app}/code",
            post(code::handler).options(cors::preflight),
            browser(
                "From the widget: a code from the device instead of an approval; where to send the browser",
                "api.application.widget.code",
            )
            .body(Body::of::<code::CodeRequest>()),
        )
}

/// The person a genuine, live ticket of `app` names.
async fn ticket_holder(state: &AppState, app: &Application, ticket: &str) -> Result<(WidgetTicket, User), V1Error> {
    let refused = || V1Error::Coded(401, "TICKET_INVALID", "the ticket is unknown or expired; reload the page");
    let ticket = WidgetTicket::open(&state.key, ticket, &app.id, state.clock.now_ms()).ok_or_else(refused)?;
    let user = state.store.get_user(&ticket.user_id).await?.ok_or_else(refused)?;
    if !state.store.app_user_enrolled(&app.id, &user.id).await? {
        return Err(refused());
    }
    if user.locked {
        return Err(V1Error::Coded(403, "USER_LOCKED", "the person's account is locked"));
    }
    Ok((ticket, user))
}

/// An access token for the application, and the callback URL carrying it.
async fn redirect(
    state: &AppState,
    app: &Application,
    user: &User,
    approval_id: Option<&str>,
    method: &str,
    ip: Option<&str>,
) -> Result<String, V1Error> {
    let token = state.applications().issue_token(app, user, approval_id, method, ip).await?;
    gatehouse_core::applications::callback_with_token(app, &token).ok_or(V1Error::Coded(
        409,
        "NO_CALLBACK",
        "the application has no callback URL",
    ))
}
