//! A failure of this server (its database, a hashing thread): logged with its cause, shown as a plain 500 page.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

use crate::html;

#[derive(Debug)]
pub struct AppError(anyhow::Error);

impl AppError {
    pub fn internal(what: &str) -> Self {
        Self(anyhow::anyhow!("{what}"))
    }
}

impl<E: Into<anyhow::Error>> From<E> for AppError {
    fn from(e: E) -> Self {
        Self(e.into())
    }
}

impl IntoResponse for AppError {
    fn into_response(self) -> Response {
        tracing::error!(error = format!("{:#}", self.0), "request failed");
        let body = html::error("Something went wrong on our side. Please try again in a moment.");
        (StatusCode::INTERNAL_SERVER_ERROR, html::page("Error", &body)).into_response()
    }
}
