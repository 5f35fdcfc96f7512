//! `/account`: the person's email, their second factor, and turning Gatehouse's authenticator on and off.
//!
//! The `second_factor` column changes only after Gatehouse has confirmed: on when `/v1/enrolled` says the
//! device is active, off when the enrollment is gone.

use axum::extract::{Query, State};
use axum::response::{Html, IntoResponse, Redirect, Response};
use serde::Deserialize;

use crate::app::AppState;
use crate::db::{self, SecondFactor};
use crate::error::AppError;
use crate::gatehouse::{Enrollment, GatehouseError};
use crate::html::{self, escape};
use crate::session::SignedIn;

/// The outcome of a change, shown once on the account page. Travels in the query by name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Notice {
    Enabled,
    Disabled,
    NotActivated,
    EnrollDenied,
    EnrollTimeout,
    Unavailable,
}

const NOTICES: [(Notice, &str); 6] = [
    (Notice::Enabled, "enabled"),
    (Notice::Disabled, "disabled"),
    (Notice::NotActivated, "not-activated"),
    (Notice::EnrollDenied, "denied"),
    (Notice::EnrollTimeout, "timeout"),
    (Notice::Unavailable, "unavailable"),
];

impl Notice {
    fn from_query(name: &str) -> Option<Self> {
        NOTICES.iter().find(|(_, n)| *n == name).map(|(notice, _)| *notice)
    }

    fn redirect(self) -> Response {
        let name = NOTICES.iter().find(|(n, _)| *n == self).map_or("unavailable", |(_, name)| name);
        Redirect::to(&format!("/account?notice={name}")).into_response()
    }

    fn html(self) -> String {
        match self {
            Self::Enabled => html::notice("Two-step verification is on: from now on, logging in needs your phone."),
            Self::Disabled => html::notice("Two-step verification is off."),
            Self::NotActivated => html::error(
                "Not activated yet: scan the code with the Gatehouse authenticator first. \
                 Press “Enable two-step verification” for a new code.",
            ),
            Self::EnrollDenied => {
                html::error("The request was denied on your phone, so two-step verification stays off.")
            }
            Self::EnrollTimeout => {
                html::error("Your phone did not answer in time, so two-step verification stays off. Try again.")
            }
            Self::Unavailable => html::error("Gatehouse is unavailable, so nothing was changed. Try again later."),
        }
    }
}

#[derive(Deserialize)]
pub struct NoticeQuery {
    notice: Option<String>,
}

pub async fn show(SignedIn { session, csrf }: SignedIn, Query(query): Query<NoticeQuery>) -> Html<String> {
    let notice = query.notice.as_deref().and_then(Notice::from_query).map(Notice::html).unwrap_or_default();
    let factor = match session.second_factor {
        SecondFactor::Gatehouse => format!(
            "<p>Two-step verification: <strong>on</strong> (Gatehouse authenticator).</p>{}",
            html::button_form("/account/two-step/disable", &csrf, "Disable two-step verification", true)
        ),
        SecondFactor::None => format!(
            "<p>Two-step verification: <strong>off</strong>.</p>\
             <p>Turn it on to confirm every login on your phone. If you already use the Gatehouse authenticator, \
             approve the request it shows; otherwise you get a code to scan.</p>{}",
            html::button_form("/account/two-step/enable", &csrf, "Enable two-step verification", false)
        ),
    };
    let body = format!(
        "{notice}<p>Logged in as <strong>{email}</strong>.</p>{factor}<hr>{logout}",
        email = escape(&session.email),
        logout = html::button_form("/logout", &csrf, "Log out", true),
    );
    html::page("Your account", &body)
}

pub async fn enable(State(state): State<AppState>, SignedIn { session, csrf }: SignedIn) -> Result<Response, AppError> {
    if session.second_factor == SecondFactor::Gatehouse {
        return Ok(Redirect::to("/account").into_response());
    }
    match state.gatehouse.enroll(&session.email).await {
        Ok(enrollment @ Enrollment { qr_url: Some(_), .. }) => Ok(scan_page(&csrf, &enrollment).into_response()),
        // Someone with a Gatehouse device approved this site on it: nothing to scan.
        Ok(_) => confirm(State(state), SignedIn { session, csrf }).await,
        Err(GatehouseError::EnrollmentDenied) => Ok(Notice::EnrollDenied.redirect()),
        Err(GatehouseError::ApprovalTimeout) => Ok(Notice::EnrollTimeout.redirect()),
        Err(e) => {
            tracing::error!(user_id = session.user_id, error = %e, "enrollment: Gatehouse call failed");
            Ok(Notice::Unavailable.redirect())
        }
    }
}

pub async fn confirm(State(state): State<AppState>, SignedIn { session, .. }: SignedIn) -> Result<Response, AppError> {
    match state.gatehouse.enrolled(&session.email).await {
        Ok(true) => {
            db::set_second_factor(&state.db, session.user_id, SecondFactor::Gatehouse).await?;
            db::mark_second_step_passed(&state.db, &session.id).await?;
            tracing::info!(user_id = session.user_id, "two-step verification enabled");
            Ok(Notice::Enabled.redirect())
        }
        Ok(false) => Ok(Notice::NotActivated.redirect()),
        Err(e) => {
            tracing::error!(user_id = session.user_id, error = %e, "enrollment check: Gatehouse call failed");
            Ok(Notice::Unavailable.redirect())
        }
    }
}

pub async fn disable(State(state): State<AppState>, SignedIn { session, .. }: SignedIn) -> Result<Response, AppError> {
    // Off only once Gatehouse has ended the enrollment: otherwise the device would still approve logins here.
    match state.gatehouse.unenroll(&session.email).await {
        Ok(_) => {
            db::set_second_factor(&state.db, session.user_id, SecondFactor::None).await?;
            tracing::info!(user_id = session.user_id, "two-step verification disabled");
            Ok(Notice::Disabled.redirect())
        }
        Err(e) => {
            tracing::error!(user_id = session.user_id, error = %e, "unenrollment: Gatehouse call failed");
            Ok(Notice::Unavailable.redirect())
        }
    }
}

fn scan_page(csrf: &str, enrollment: &Enrollment) -> Html<String> {
    let qr = enrollment.qr_url.as_deref().unwrap_or_default();
    let text = match (&enrollment.activation_code, &enrollment.activation_uri) {
        (Some(code), Some(uri)) => format!(
            "<p>No camera? Enter the activation code <code>{}</code>, or give a command-line authenticator this \
             activation link:</p><p><code id=\"activation-uri\">{}</code></p>",
            escape(code),
            escape(uri),
        ),
        (None, Some(uri)) => format!(
            "<p>Or give a command-line authenticator this activation link:</p>\
             <p><code id=\"activation-uri\">{}</code></p>",
            escape(uri),
        ),
        (Some(code), None) => format!("<p>No camera? Enter the activation code <code>{}</code>.</p>", escape(code)),
        (None, None) => String::new(),
    };
    let expiry = enrollment
        .expire_at
        .as_deref()
        .map(|at| format!("<p>The code works until {}.</p>", escape(at)))
        .unwrap_or_default();
    let body = format!(
        "<p>Scan this code with the Gatehouse authenticator on your phone.</p>\
         <img class=\"qr\" src=\"{qr}\" alt=\"QR code that activates the Gatehouse authenticator for this site\">\
         {text}{expiry}\
         <p>Then confirm here; two-step verification is on once the authenticator is active.</p>{confirm}",
        qr = escape(qr),
        confirm = html::button_form("/account/two-step/confirm", csrf, "I have scanned it", false),
    );
    html::page("Enable two-step verification", &body)
}
