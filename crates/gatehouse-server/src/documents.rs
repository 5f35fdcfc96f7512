//! The JSON:API-like documents of the product: `meta` + `data` on success, `meta` + `errors` on failure.

use gatehouse_core::clock::{Millis, format_timestamp};
use gatehouse_core::flow::FlowError;
use serde_json::{Map, Value, json};

const DOCUMENT_TYPE: &str = "jsonapi.metadata.document";
const VALIDATION_ERROR_TYPE: &str = "jsonapi.metadata.validation.error";

fn meta(now: Millis) -> Map<String, Value> {
    let mut m = Map::new();
    m.insert("type".into(), json!(DOCUMENT_TYPE));
    m.insert("timestamp".into(), json!(format_timestamp(now)));
    m
}

/// A flow session document with `attributes`; `next` is `(attribute name, code)`, absent once the flow is done.
pub fn session(
    now: Millis,
    data_type: &str,
    id: &str,
    next: Option<(&str, &str)>,
    mut attributes: Map<String, Value>,
) -> Value {
    if let Some((name, code)) = next {
        attributes.insert(name.into(), json!(code));
    }
    json!({ "meta": meta(now), "data": { "type": data_type, "id": id, "attributes": attributes } })
}

/// Errors of a flow call; the next step, when a retry is possible, moves into `meta`.
pub fn flow_errors(
    now: Millis,
    next: Option<(&str, &str)>,
    lock_expiry: Option<Millis>,
    errors: &[FlowError],
) -> Value {
    let mut m = meta(now);
    if let Some((name, code)) = next {
        m.insert(name.into(), json!(code));
    }
    if let Some(until) = lock_expiry {
        m.insert("temporaryLockExpiry".into(), json!(format_timestamp(until)));
    }
    let errors: Vec<Value> = errors
        .iter()
        .map(|e| {
            let mut obj = Map::new();
            obj.insert("code".into(), json!(e.code.as_str()));
            if let Some(pointer) = &e.pointer {
                obj.insert("source".into(), json!({ "pointer": pointer }));
            }
            if let Some(detail) = e.detail {
                obj.insert("meta".into(), json!({ "type": VALIDATION_ERROR_TYPE, "detail": detail }));
            }
            Value::Object(obj)
        })
        .collect();
    json!({ "meta": m, "errors": errors })
}

/// An error about the request itself (not the flow): a code, a human-readable title and where it points.
pub fn request_error(now: Millis, code: &str, title: &str, pointer: Option<&str>) -> Value {
    let mut obj = Map::new();
    obj.insert("code".into(), json!(code));
    obj.insert("title".into(), json!(title));
    if let Some(p) = pointer {
        obj.insert("source".into(), json!({ "pointer": p }));
    }
    json!({ "meta": meta(now), "errors": [obj] })
}

/// A resource document (`data` with a type, an id and attributes).
pub fn resource(now: Millis, data_type: &str, id: &str, attributes: Value) -> Value {
    json!({ "meta": meta(now), "data": { "type": data_type, "id": id, "attributes": attributes } })
}
