//! Routes that carry their own description: every route is registered together with what the OpenAPI document
//! says about it (`openapi.rs` builds the document from this table), so no route can be served undocumented.

use std::borrow::Cow;

use axum::Router;
use axum::http::Method;
use axum::routing::MethodRouter;
use utoipa::openapi::RefOr;
use utoipa::openapi::schema::Schema;

use crate::state::AppState;

/// A request body's schema (and the schemas it refers to), from the type the handler decodes.
#[derive(Clone, Copy)]
pub struct Body(pub fn() -> BodySchema);

pub struct BodySchema {
    pub name: Cow<'static, str>,
    pub schema: RefOr<Schema>,
    pub nested: Vec<(String, RefOr<Schema>)>,
}

impl Body {
    pub fn of<T: utoipa::ToSchema>() -> Self {
        Self(|| {
            let mut nested = Vec::new();
            T::schemas(&mut nested);
            BodySchema { name: T::name(), schema: T::schema(), nested }
        })
    }
}

/// Who may call a route, and with what.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Auth {
    Public,
    /// A running public self-service flow (its cookie); `start` when the call may start one.
    SelfServiceFlow {
        start: bool,
    },
    /// A running registration flow (its cookie); `start` when the call may start one.
    RegistrationFlow {
        start: bool,
    },
    /// A running login flow (its cookie); `start` when the call may start one.
    LoginFlow {
        start: bool,
    },
    /// An authenticated session (`gatehouse_session`).
    Session,
    /// An admin token (`Authorization: Bearer`).
    AdminToken,
    /// A device: signed request headers (`X-Device-*`).
    Device,
    /// A third-party application's API key (`Authorization: Bearer`).
    AppKey,
}

/// What a route answers on success.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Answer {
    /// A flow document (`data.attributes` with the next step); 400/403 flow errors.
    Flow,
    /// A JSON document.
    Document(&'static str),
    /// 202 with a JSON document.
    Accepted(&'static str),
    NoContent,
    /// Plain text (metrics).
    Text,
    /// A JavaScript file.
    Script,
    /// `{"status": …}` (health).
    Status,
    /// A v1 document `{"type", "result"}` of this type; errors in the v1 shape.
    V1(&'static str),
}

/// The query parameters of a route, from the type the handler decodes.
#[derive(Clone, Copy)]
pub struct Query(pub fn() -> Vec<utoipa::openapi::path::Parameter>);

impl Query {
    pub fn of<T: utoipa::IntoParams>() -> Self {
        Self(|| T::into_params(|| Some(utoipa::openapi::path::ParameterIn::Query)))
    }
}

#[derive(Clone, Copy)]
pub struct Doc {
    pub summary: &'static str,
    pub body: Option<Body>,
    pub query: Option<Query>,
    pub auth: Auth,
    pub answer: Answer,
}

impl Doc {
    pub const fn new(summary: &'static str, auth: Auth, answer: Answer) -> Self {
        Self { summary, body: None, query: None, auth, answer }
    }

    #[must_use]
    pub fn body(mut self, body: Body) -> Self {
        self.body = Some(body);
        self
    }

    #[must_use]
    pub fn query(mut self, query: Query) -> Self {
        self.query = Some(query);
        self
    }
}

/// One documented route.
#[derive(Clone)]
pub struct Served {
    pub method: Method,
    pub path: String,
    pub doc: Doc,
}

/// A router being built, and the description of each route added to it.
pub struct Routes {
    router: Router<AppState>,
    served: Vec<Served>,
}

impl Routes {
    pub fn new() -> Self {
        Self { router: Router::new(), served: Vec::new() }
    }

    /// `handler` (made with axum's `get`, `post`, `delete` for `method`) at `path`.
    #[must_use]
    pub fn at(mut self, method: Method, path: &str, handler: MethodRouter<AppState>, doc: Doc) -> Self {
        self.router = self.router.route(path, handler);
        self.served.push(Served { method, path: path.to_owned(), doc });
        self
    }

    /// As [`Routes::at`], and also at `path/`: the product spells some paths with a trailing slash and some
    /// without, so both are accepted; the document names the path once.
    #[must_use]
    pub fn at_both(mut self, method: Method, path: &str, handler: MethodRouter<AppState>, doc: Doc) -> Self {
        self.router = self.router.route(&format!("{path}/"), handler.clone());
        self.at(method, path, handler, doc)
    }

    #[must_use]
    pub fn merge(mut self, other: Self) -> Self {
        self.router = self.router.merge(other.router);
        self.served.extend(other.served);
        self
    }

    pub fn into_parts(self) -> (Router<AppState>, Vec<Served>) {
        (self.router, self.served)
    }
}

impl Default for Routes {
    fn default() -> Self {
        Self::new()
    }
}
