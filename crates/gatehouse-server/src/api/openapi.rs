//! The OpenAPI 3.1 document (`GET /openapi.json`, committed as `docs/openapi.json`), built from the route table
//! (`routes.rs`): every route the server serves, its request body (the handler's own type), its success
//! document, and the error documents every call may answer, with the next-step and error codes as enums taken
//! from the code's own lists.

use std::sync::OnceLock;

use axum::Json;
use axum::http::Method;
use gatehouse_core::flow::{ErrorCode, NextStep};
use utoipa::openapi::path::{HttpMethod, OperationBuilder, ParameterBuilder, ParameterIn, PathItem, PathsBuilder};
use utoipa::openapi::request_body::RequestBodyBuilder;
use utoipa::openapi::response::{ResponseBuilder, ResponsesBuilder};
use utoipa::openapi::schema::{AdditionalProperties, ArrayBuilder, ObjectBuilder, Schema, Type};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityRequirement, SecurityScheme};
use utoipa::openapi::{
    ComponentsBuilder, ContentBuilder, HeaderBuilder, InfoBuilder, OpenApi, OpenApiBuilder, Ref, RefOr, Required,
    ServerBuilder,
};

use super::routes::{Answer, Auth, Served};
use crate::errors::REQUEST_ERROR_CODES;

/// The document, built once.
pub fn document() -> &'static OpenApi {
    static DOCUMENT: OnceLock<OpenApi> = OnceLock::new();
    DOCUMENT.get_or_init(|| build(&super::table().1))
}

/// `GET /openapi.json`.
pub async fn handler() -> Json<&'static OpenApi> {
    Json(document())
}

fn string() -> ObjectBuilder {
    ObjectBuilder::new().schema_type(Type::String)
}

fn reference(name: &str) -> RefOr<Schema> {
    RefOr::Ref(Ref::from_schema_name(name))
}

fn enumeration(values: impl IntoIterator<Item = &'static str>, description: &str) -> Schema {
    string().enum_values(Some(values)).description(Some(description)).into()
}

/// The shapes every answer shares.
fn components(served: &[Served]) -> utoipa::openapi::Components {
    let meta = ObjectBuilder::new()
        .property("type", string())
        .required("type")
        .property("timestamp", string().description(Some("When the answer was made (after any padding)")))
        .required("timestamp")
        .property("nextStep", reference("NextStep"))
        .property("nextAuthStep", reference("NextStep"))
        .property("temporaryLockExpiry", string())
        .property("nextCursor", string().description(Some("The cursor of the next page (audit)")))
        .additional_properties(Some(AdditionalProperties::FreeForm(true)));
    let attributes = ObjectBuilder::new()
        .description(Some("The flow's state for the client: the next step and what it needs"))
        .property("nextStep", reference("NextStep"))
        .property("nextAuthStep", reference("NextStep"))
        .property("number", ObjectBuilder::new().schema_type(Type::Integer).description(Some("The number to match")))
        .property("options", ArrayBuilder::new().items(string()))
        .property("questions", ArrayBuilder::new().items(string()))
        .additional_properties(Some(AdditionalProperties::FreeForm(true)));
    let flow_document = ObjectBuilder::new()
        .property("meta", reference("Meta"))
        .required("meta")
        .property(
            "data",
            ObjectBuilder::new()
                .property("type", string())
                .required("type")
                .property("id", string())
                .required("id")
                .property("attributes", reference("FlowAttributes"))
                .required("attributes"),
        )
        .required("data");
    let error = ObjectBuilder::new()
        .property("code", reference("ErrorCode"))
        .required("code")
        .property("title", string())
        .property("source", ObjectBuilder::new().property("pointer", string()))
        .property("meta", ObjectBuilder::new().additional_properties(Some(AdditionalProperties::FreeForm(true))));
    let error_document = ObjectBuilder::new()
        .property("meta", reference("Meta"))
        .required("meta")
        .property("errors", ArrayBuilder::new().items(reference("Error")).min_items(Some(1)))
        .required("errors");
    // `data` is a resource or a list of them, described per call in docs/api.md.
    let document = ObjectBuilder::new()
        .description(Some("`meta` and `data` (a resource or a list of resources)"))
        .property("meta", reference("Meta"))
        .required("meta")
        .required("data")
        .additional_properties(Some(AdditionalProperties::FreeForm(true)));
    let codes = ErrorCode::ALL.iter().map(|c| c.as_str()).chain(REQUEST_ERROR_CODES.iter().copied());
    let mut components = ComponentsBuilder::new()
        .schema("NextStep", enumeration(NextStep::ALL.iter().map(|s| s.as_str()), "What the flow needs next"))
        .schema("ErrorCode", enumeration(codes, "Flow error codes and request error codes"))
        .schema("Meta", meta)
        .schema("FlowAttributes", attributes)
        .schema("FlowDocument", flow_document)
        .schema("Error", error)
        .schema("ErrorDocument", error_document)
        .schema("Document", document)
        .schema(
            "Status",
            ObjectBuilder::new()
                .property("status", string())
                .required("status")
                .additional_properties(Some(AdditionalProperties::FreeForm(true))),
        )
        .security_scheme("session", cookie_scheme("gatehouse_session"))
        .schema(
            "V1Document",
            ObjectBuilder::new()
                .description(Some("A v1 answer: its type and result"))
                .property("type", string())
                .required("type")
                .property(
                    "result",
                    ObjectBuilder::new().additional_properties(Some(AdditionalProperties::FreeForm(true))),
                )
                .required("result"),
        )
        .schema(
            "V1Error",
            ObjectBuilder::new()
                .description(Some("A v1 error (UNLOQ's shape)"))
                .property(
                    "error",
                    ObjectBuilder::new()
                        .property("code", string())
                        .required("code")
                        .property("ns", string())
                        .required("ns")
                        .property("message", string())
                        .required("message")
                        .property("status", string())
                        .required("status"),
                )
                .required("error"),
        )
        .security_scheme("adminToken", SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()))
        .security_scheme("appKey", SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()));
    for s in served {
        if let Some(body) = s.doc.body {
            let body = (body.0)();
            components = components.schema(body.name, body.schema).schemas_from_iter(body.nested);
        }
    }
    components.build()
}

fn cookie_scheme(name: &str) -> SecurityScheme {
    SecurityScheme::ApiKey(utoipa::openapi::security::ApiKey::Cookie(utoipa::openapi::security::ApiKeyValue::new(name)))
}

fn json_response(description: &str, schema: &str) -> utoipa::openapi::Response {
    ResponseBuilder::new()
        .description(description)
        .content("application/json", ContentBuilder::new().schema(Some(reference(schema))).build())
        .build()
}

/// The area a path belongs to: `public self-service`, `authentication`, `protected`, `admin`, `device`, or
/// `operations` outside `/rest`.
fn tag(path: &str) -> String {
    let mut parts = path.trim_start_matches('/').split('/');
    match (parts.next(), parts.next(), parts.next()) {
        (Some("rest"), Some("public"), Some(area)) => area.replace("self-service", "public self-service"),
        (Some("rest"), Some(area), _) => area.to_owned(),
        _ => "operations".to_owned(),
    }
}

fn operation(s: &Served) -> utoipa::openapi::path::Operation {
    let mut op = OperationBuilder::new()
        .summary(Some(s.doc.summary))
        .operation_id(Some(format!("{} {}", s.method, s.path)))
        .tag(tag(&s.path));
    // Path parameters, named in braces.
    for name in s.path.split('/').filter_map(|seg| seg.strip_prefix('{')?.strip_suffix('}')) {
        op = op.parameter(
            ParameterBuilder::new()
                .name(name)
                .parameter_in(ParameterIn::Path)
                .required(Required::True)
                .schema(Some(string())),
        );
    }
    if let Some(query) = s.doc.query {
        for p in (query.0)() {
            op = op.parameter(p);
        }
    }
    let changes_state = s.method != Method::GET;
    if changes_state && s.path.starts_with("/rest/") {
        op = op.parameter(
            ParameterBuilder::new()
                .name("X-Same-Domain")
                .parameter_in(ParameterIn::Header)
                .required(Required::True)
                .description(Some("Any non-empty value: a cross-site form cannot send it (CSRF)"))
                .schema(Some(string().min_length(Some(1)))),
        );
    }
    let flow_cookie = match s.doc.auth {
        Auth::SelfServiceFlow { start } => Some(("gatehouse_flow", start)),
        Auth::LoginFlow { start } => Some(("gatehouse_auth", start)),
        Auth::RegistrationFlow { start } => Some(("gatehouse_registration", start)),
        _ => None,
    };
    if let Some((cookie, start)) = flow_cookie {
        let description = if start {
            "The flow session; without one, this call starts a flow"
        } else {
            "The flow session (`__Host-` prefixed over TLS)"
        };
        op = op.parameter(
            ParameterBuilder::new()
                .name(cookie)
                .parameter_in(ParameterIn::Cookie)
                .required(Required::False)
                .description(Some(description))
                .schema(Some(string())),
        );
    }
    match s.doc.auth {
        Auth::Session => op = op.security(SecurityRequirement::new("session", Vec::<String>::new())),
        Auth::AdminToken => op = op.security(SecurityRequirement::new("adminToken", Vec::<String>::new())),
        Auth::AppKey => op = op.security(SecurityRequirement::new("appKey", Vec::<String>::new())),
        _ => {}
    }
    if let Some(body) = s.doc.body {
        let name = (body.0)().name;
        op = op.request_body(Some(
            RequestBodyBuilder::new()
                .description(Some("JSON; calls without input also accept an empty body"))
                .content("application/json", ContentBuilder::new().schema(Some(reference(&name))).build())
                .required(Some(Required::True))
                .build(),
        ));
    }

    let set_cookie = || {
        HeaderBuilder::new()
            .schema(Some(string()))
            .description(Some("A new or renewed flow cookie, or a session cookie when a login completes"))
            .build()
    };
    let mut responses = ResponsesBuilder::new();
    responses = match s.doc.answer {
        Answer::Flow => responses
            .response(
                "200",
                ResponseBuilder::new()
                    .description("The flow went on (or completed: no next step)")
                    .header("Set-Cookie", set_cookie())
                    .content("application/json", ContentBuilder::new().schema(Some(reference("FlowDocument"))).build())
                    .build(),
            )
            .response(
                "400",
                json_response("A wrong answer (retry: `meta.nextStep`), or a bad request", "ErrorDocument"),
            )
            .response(
                "401",
                json_response("Not authorized for the application yet (`meta.nextAuthStep`)", "ErrorDocument"),
            )
            .response("403", json_response("The flow ended", "ErrorDocument")),
        Answer::Document(what) => responses.response("200", json_response(what, "Document")),
        Answer::Status => responses.response("200", json_response("The status", "Status")),
        Answer::Accepted(what) => responses.response("202", json_response(what, "Document")),
        Answer::NoContent => responses.response("204", ResponseBuilder::new().description("Done").build()),
        Answer::V1(_) => responses,
        Answer::Text => responses.response(
            "200",
            ResponseBuilder::new()
                .description("Prometheus text format")
                .content("text/plain", ContentBuilder::new().schema(Some(string())).build())
                .build(),
        ),
        Answer::Script => responses.response(
            "200",
            ResponseBuilder::new()
                .description("The script")
                .content("text/javascript", ContentBuilder::new().schema(Some(string())).build())
                .build(),
        ),
    };
    if let Answer::V1(what) = s.doc.answer {
        let responses = responses
            .response("200", json_response(what, "V1Document"))
            .response("default", json_response("An error in the v1 shape", "V1Error"));
        return op.responses(responses.build()).build();
    }
    responses = responses
        .response("429", json_response("Too many attempts (`Retry-After`)", "ErrorDocument"))
        .response("503", json_response("Busy or a dependency unavailable (`Retry-After`)", "ErrorDocument"))
        .response("default", json_response("Any other error", "ErrorDocument"));
    if s.doc.answer == Answer::Status {
        responses = responses.response("503", json_response("Not ready", "Status"));
    }
    op.responses(responses.build()).build()
}

fn build(served: &[Served]) -> OpenApi {
    let mut paths = PathsBuilder::new();
    for s in served {
        let method = match s.method {
            Method::GET => HttpMethod::Get,
            Method::DELETE => HttpMethod::Delete,
            Method::PUT => HttpMethod::Put,
            _ => HttpMethod::Post,
        };
        paths = paths.path(s.path.clone(), PathItem::new(method, operation(s)));
    }
    OpenApiBuilder::new()
        .info(
            InfoBuilder::new()
                .title("Gatehouse")
                .version(env!("CARGO_PKG_VERSION"))
                .description(Some(
                    "Self-service flows, login and second factors. See docs/api.md for the rules behind the answers.",
                ))
                .build(),
        )
        .servers(Some(vec![ServerBuilder::new().url("/").build()]))
        .paths(paths.build())
        .components(Some(components(served)))
        .build()
}
