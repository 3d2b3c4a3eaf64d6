//! The OpenAPI document (`GET /api/v1/openapi.json`) against the application that serves it:
//! - its operations are exactly the routes registered in `src/routes/mod.rs` and the contract's
//!   endpoints (plus health, metrics and the documentation itself);
//! - every documented operation answers a real request (never 404/405), with a documented
//!   status, and its JSON has the documented shape (required fields present, no undocumented
//!   field, types, enums and formats as documented, `$ref`s followed);
//! - every other method on a documented path is 405; the security declaration matches what the
//!   application asks for (401 without a key);
//! - the request bodies documented are the ones the application accepts;
//! - error answers (400, 401, 404, 415, unknown paths) have the documented error shape.
//!
//! The shape checker is written here, independently of utoipa, and is itself tested on a small
//! document (`checker_catches_drift`).

use std::collections::{BTreeMap, BTreeSet};

use crate::helpers::{Client, Reply, TestApp, two_tries_sql};
use serde_json::{Value, json};

const METHODS: [&str; 8] = [
    "get", "put", "post", "delete", "options", "head", "patch", "trace",
];

/// The contract's endpoints (shared/CONTRACT.md), plus what the API serves beside them.
const CONTRACT: &[(&str, &str)] = &[
    ("POST", "/api/v1/queues/insertdataincallqueue/"),
    ("POST", "/api/v1/queues/insertdataincallqueue"),
    ("GET", "/api/v1/queues/batch-status/{batch_id}"),
    ("POST", "/api/v1/controls/dispatch-calls"),
    ("POST", "/api/v1/batches/{batch_id}/pause"),
    ("POST", "/api/v1/batches/{batch_id}/resume"),
    ("POST", "/api/v1/batches/{batch_id}/cancel"),
    ("GET", "/api/v1/calls/{call_id}"),
    ("GET", "/api/v1/callbacks"),
    ("GET", "/api/v1/callbacks/{event_id}"),
    ("POST", "/api/v1/callbacks/redeliver"),
    ("GET", "/api/v1/account"),
    ("POST", "/api/v1/prompts"),
    ("GET", "/api/v1/prompts"),
    ("DELETE", "/api/v1/prompts/{prompt_id}"),
    ("GET", "/api/v1/recordings/{call_id}/{attempt}"),
    ("GET", "/api/v1/recordings/{call_id}"),
    ("PUT", "/api/v1/account/callback"),
    ("DELETE", "/api/v1/account/callback"),
    ("POST", "/api/v1/account/callback/test"),
    ("POST", "/api/v1/account/callback-secret/rotate"),
    ("POST", "/api/v1/account/keys"),
    ("DELETE", "/api/v1/account/keys/{key_id}"),
    // Ours beside the contract's: the keys' listing.
    ("GET", "/api/v1/account/keys"),
    ("GET", "/api/v1/dnc"),
    ("POST", "/api/v1/dnc"),
    ("DELETE", "/api/v1/dnc/{phone_number}"),
    ("GET", "/api/v1/calls"),
    ("DELETE", "/api/v1/numbers/{phone_number}"),
    ("GET", "/healthz"),
    ("GET", "/readyz"),
    ("GET", "/metrics"),
    ("GET", "/api/v1/openapi.json"),
    ("GET", "/api/v1/docs"),
];

// ---------------------------------------------------------------------------------------------
// The shape checker: a JSON value against an OpenAPI 3.1 schema of the document.

struct Checker<'a> {
    doc: &'a Value,
}

/// Properties, required names and the additional-properties rule of an object schema, with
/// every `allOf` branch (and `$ref`) merged: how serde's `flatten` is documented.
#[derive(Default)]
struct ObjectShape {
    properties: BTreeMap<String, Value>,
    required: BTreeSet<String>,
    /// None: no `additionalProperties` anywhere (undocumented keys are refused).
    additional: Option<Value>,
    declares_properties: bool,
    property_names: Option<Value>,
}

fn type_of(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

fn matches_type(t: &str, v: &Value) -> bool {
    match t {
        "integer" => v.as_i64().is_some() || v.as_u64().is_some(),
        "number" => v.is_number(),
        other => type_of(v) == other,
    }
}

fn is_rfc3339(s: &str) -> bool {
    chrono::DateTime::parse_from_rfc3339(s).is_ok()
}

impl<'a> Checker<'a> {
    fn new(doc: &'a Value) -> Checker<'a> {
        Checker { doc }
    }

    fn resolve(&self, reference: &str) -> Option<&'a Value> {
        let pointer = reference.strip_prefix('#')?;
        self.doc.pointer(pointer)
    }

    /// Every mismatch of `value` against `schema`, each naming where it is (`$.a.b[0]`).
    fn check(&self, schema: &Value, value: &Value) -> Vec<String> {
        let mut errors = Vec::new();
        self.walk(schema, value, "$", &mut errors, 0);
        errors
    }

    fn walk(&self, schema: &Value, value: &Value, at: &str, errors: &mut Vec<String>, depth: u32) {
        if depth > 64 {
            errors.push(format!("{at}: schema nests too deep (a $ref loop?)"));
            return;
        }
        let schema = match schema {
            Value::Bool(true) => return,
            Value::Bool(false) => {
                errors.push(format!("{at}: nothing is allowed here"));
                return;
            }
            Value::Object(o) => o,
            other => {
                errors.push(format!("{at}: not a schema: {other}"));
                return;
            }
        };
        if let Some(r) = schema.get("$ref").and_then(Value::as_str) {
            match self.resolve(r) {
                Some(target) => self.walk(target, value, at, errors, depth + 1),
                None => errors.push(format!("{at}: unresolvable $ref {r}")),
            }
            return;
        }
        if let Some(branches) = schema.get("anyOf").and_then(Value::as_array) {
            let results = self.each_branch(branches, value, at, depth);
            if !results.iter().any(Vec::is_empty) {
                errors.push(format!("{at}: matches no anyOf branch: {results:?}"));
            }
        }
        if let Some(branches) = schema.get("oneOf").and_then(Value::as_array) {
            let results = self.each_branch(branches, value, at, depth);
            let passing = results.iter().filter(|e| e.is_empty()).count();
            if passing != 1 {
                errors.push(format!(
                    "{at}: matches {passing} oneOf branches, not exactly one: {results:?}"
                ));
            }
        }
        if let Some(types) = schema.get("type") {
            let types: Vec<&str> = match types {
                Value::String(t) => vec![t.as_str()],
                Value::Array(ts) => ts.iter().filter_map(Value::as_str).collect(),
                _ => vec![],
            };
            if !types.iter().any(|t| matches_type(t, value)) {
                errors.push(format!(
                    "{at}: is {} ({value}), documented as {types:?}",
                    type_of(value)
                ));
                return;
            }
        }
        if let Some(values) = schema.get("enum").and_then(Value::as_array)
            && !values.contains(value)
        {
            errors.push(format!("{at}: {value} is not one of {values:?}"));
        }
        if let Some(c) = schema.get("const")
            && c != value
        {
            errors.push(format!("{at}: {value} is not {c}"));
        }
        if let (Some(format), Some(s)) =
            (schema.get("format").and_then(Value::as_str), value.as_str())
        {
            let ok = match format {
                "date-time" => is_rfc3339(s),
                "uuid" => uuid::Uuid::parse_str(s).is_ok(),
                _ => true,
            };
            if !ok {
                errors.push(format!("{at}: `{s}` is not a {format}"));
            }
        }
        if let Some(n) = value.as_f64() {
            if let Some(min) = schema.get("minimum").and_then(Value::as_f64)
                && n < min
            {
                errors.push(format!("{at}: {n} is below the minimum {min}"));
            }
            if let Some(max) = schema.get("maximum").and_then(Value::as_f64)
                && n > max
            {
                errors.push(format!("{at}: {n} is above the maximum {max}"));
            }
        }
        match value {
            Value::Object(obj) => {
                let mut shape = ObjectShape::default();
                self.collect_object(&Value::Object(schema.clone()), &mut shape, depth);
                for name in &shape.required {
                    if !obj.contains_key(name) {
                        errors.push(format!("{at}: required property `{name}` is missing"));
                    }
                }
                for (key, v) in obj {
                    let here = format!("{at}.{key}");
                    if let Some(names) = &shape.property_names {
                        self.walk(names, &Value::String(key.clone()), &here, errors, depth + 1);
                    }
                    if let Some(s) = shape.properties.get(key) {
                        self.walk(s, v, &here, errors, depth + 1);
                    } else {
                        match &shape.additional {
                            Some(Value::Bool(true)) => {}
                            Some(s @ Value::Object(_)) => self.walk(s, v, &here, errors, depth + 1),
                            None if !shape.declares_properties => {}
                            _ => errors.push(format!("{here}: undocumented property")),
                        }
                    }
                }
            }
            Value::Array(items) => {
                if let Some(item_schema) = schema.get("items") {
                    for (i, v) in items.iter().enumerate() {
                        self.walk(item_schema, v, &format!("{at}[{i}]"), errors, depth + 1);
                    }
                }
                if let Some(min) = schema.get("minItems").and_then(Value::as_u64)
                    && (items.len() as u64) < min
                {
                    errors.push(format!("{at}: fewer than {min} items"));
                }
            }
            _ => {}
        }
        if let Some(branches) = schema.get("allOf").and_then(Value::as_array) {
            // Object branches were merged above; other branches must hold on their own.
            for b in branches {
                let b = self.deref(b);
                if !self.is_object_shape(b) {
                    self.walk(b, value, at, errors, depth + 1);
                }
            }
        }
    }

    /// The errors of `value` against each branch of an `anyOf` or `oneOf`.
    fn each_branch(
        &self,
        branches: &[Value],
        value: &Value,
        at: &str,
        depth: u32,
    ) -> Vec<Vec<String>> {
        branches
            .iter()
            .map(|b| {
                let mut e = Vec::new();
                self.walk(b, value, at, &mut e, depth + 1);
                e
            })
            .collect()
    }

    fn deref<'s>(&'s self, schema: &'s Value) -> &'s Value {
        let mut s = schema;
        for _ in 0..16 {
            match s
                .get("$ref")
                .and_then(Value::as_str)
                .and_then(|r| self.resolve(r))
            {
                Some(t) => s = t,
                None => break,
            }
        }
        s
    }

    fn is_object_shape(&self, schema: &Value) -> bool {
        schema.get("properties").is_some()
            || schema.get("allOf").is_some()
            || schema.get("additionalProperties").is_some()
    }

    fn collect_object(&self, schema: &Value, shape: &mut ObjectShape, depth: u32) {
        if depth > 64 {
            return;
        }
        let schema = match schema.get("$ref").and_then(Value::as_str) {
            Some(r) => match self.resolve(r) {
                Some(t) => t.clone(),
                None => return,
            },
            None => schema.clone(),
        };
        if let Some(props) = schema.get("properties").and_then(Value::as_object) {
            shape.declares_properties = true;
            for (k, v) in props {
                shape.properties.insert(k.clone(), v.clone());
            }
        }
        if let Some(req) = schema.get("required").and_then(Value::as_array) {
            shape
                .required
                .extend(req.iter().filter_map(Value::as_str).map(str::to_owned));
        }
        if let Some(a) = schema.get("additionalProperties") {
            shape.additional = Some(a.clone());
        }
        if let Some(n) = schema.get("propertyNames") {
            shape.property_names = Some(n.clone());
        }
        if let Some(branches) = schema.get("allOf").and_then(Value::as_array) {
            for b in branches {
                self.collect_object(b, shape, depth + 1);
            }
        }
    }
}

#[test]
fn checker_catches_drift() {
    let doc = json!({"components": {"schemas": {
        "Totals": {"type": "object", "properties": {"total": {"type": "integer"}}, "required": ["total"]},
        "Thing": {"allOf": [
            {"$ref": "#/components/schemas/Totals"},
            {"type": "object", "properties": {
                "status": {"type": "string", "enum": ["success"]},
                "when": {"type": ["string", "null"], "format": "date-time"},
                "id": {"type": "string", "format": "uuid"},
                "extra": {"type": "object", "additionalProperties": true},
                "items": {"type": "array", "items": {"anyOf": [
                    {"type": "object", "properties": {"a": {"type": "integer"}}, "required": ["a"]},
                    {"type": "object", "properties": {"b": {"type": "null"}}, "required": ["b"]}]}},
                "maybe": {"oneOf": [{"type": "null"}, {"$ref": "#/components/schemas/Totals"}]}
            }, "required": ["status", "when", "id", "items"]}
        ]}
    }}});
    let c = Checker::new(&doc);
    let thing = json!({"$ref": "#/components/schemas/Thing"});
    let good = json!({"total": 3, "status": "success", "when": null,
        "id": "6f9c8d5e-1a2b-4c3d-8e9f-001122334455", "extra": {"anything": [1]},
        "items": [{"a": 1}, {"b": null}], "maybe": {"total": 1}});
    assert_eq!(c.check(&thing, &good), Vec::<String>::new());
    let with = |patch: Value| {
        let mut v = good.clone();
        for (k, x) in patch.as_object().expect("object") {
            if x == "<remove>" {
                v.as_object_mut().expect("object").remove(k);
            } else {
                v[k] = x.clone();
            }
        }
        c.check(&thing, &v)
    };
    let fails = |patch: Value, what: &str| {
        let errors = with(patch.clone());
        assert!(
            errors.iter().any(|e| e.contains(what)),
            "{patch}: expected an error containing `{what}`, got {errors:?}"
        );
    };
    fails(json!({"total": "<remove>"}), "required property `total`");
    fails(json!({"when": "<remove>"}), "required property `when`");
    fails(json!({"surprise": 1}), "$.surprise: undocumented property");
    fails(json!({"total": "3"}), "$.total: is string");
    fails(json!({"total": 1.5}), "$.total: is number");
    fails(json!({"status": "error"}), "is not one of");
    fails(json!({"when": "yesterday"}), "is not a date-time");
    fails(json!({"id": "nope"}), "is not a uuid");
    fails(json!({"items": [{"c": 1}]}), "matches no anyOf branch");
    fails(json!({"maybe": {"total": "x"}}), "oneOf");
    fails(json!({"maybe": {"total": 1, "more": 2}}), "oneOf");
    let dangling = json!({"$ref": "#/components/schemas/Missing"});
    assert!(c.check(&dangling, &json!({}))[0].contains("unresolvable"));
}

// ---------------------------------------------------------------------------------------------
// The document and the application.

/// (METHOD, path) of every operation of the document.
fn documented_operations(doc: &Value) -> BTreeSet<(String, String)> {
    let mut ops = BTreeSet::new();
    for (path, item) in doc["paths"].as_object().expect("paths") {
        for m in METHODS {
            if item.get(m).is_some() {
                ops.insert((m.to_uppercase(), path.clone()));
            }
        }
    }
    ops
}

/// The string literals between `from` and the next `)` that closes the call.
fn literals(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = text;
    while let Some(start) = rest.find('"') {
        let after = &rest[start + 1..];
        let Some(end) = after.find('"') else { break };
        out.push(after[..end].to_owned());
        rest = &after[end + 1..];
    }
    out
}

/// The routes `routes::configure` registers, read from its source: each
/// `web::resource(<paths>)` with the methods of its `.route(web::<method>()...)` calls, under
/// the `web::scope` that encloses it (the routes after `web::scope(...)` are all inside it).
fn registered_routes() -> BTreeSet<(String, String)> {
    let source = include_str!("../../src/routes/mod.rs");
    let body = &source[source
        .find("pub fn configure")
        .expect("configure in routes/mod.rs")..];
    let mut routes = BTreeSet::new();
    let mut prefix = String::new();
    let mut i = 0;
    while i < body.len() {
        let rest = &body[i..];
        if let Some(r) = rest.strip_prefix("web::scope(") {
            let close = r.find(')').expect("scope closes");
            prefix = literals(&r[..close]).concat();
            i += "web::scope(".len() + close;
        } else if let Some(r) = rest.strip_prefix("web::resource(") {
            let close = r.find(')').expect("resource closes");
            let paths = literals(&r[..close]);
            // Its routes: up to the next resource.
            let scope_end = r.find("web::resource(").unwrap_or(r.len());
            let mut methods = Vec::new();
            for m in METHODS {
                if r[..scope_end].contains(&format!(".route(web::{m}()")) {
                    methods.push(m.to_uppercase());
                }
            }
            assert!(!methods.is_empty(), "no route methods for {paths:?}");
            for p in &paths {
                // The PBXs' signed media URLs are capabilities, not the clients' API: they are
                // not in the clients' document (docs/api.md, "How the PBX gets prompts").
                if p.starts_with("/media/") {
                    continue;
                }
                for m in &methods {
                    routes.insert((m.clone(), format!("{prefix}{p}")));
                }
            }
            i += "web::resource(".len() + close;
        } else {
            i += rest.chars().next().map_or(1, char::len_utf8);
        }
    }
    routes
}

struct Fixture {
    call_id: String,
    event_id: String,
    prompt_id: String,
    /// A second API key of the account (the first one makes the requests).
    key_id: String,
}

/// A number on the account's do-not-call list and in no call.
const LISTED_NUMBER: &str = "9876500099";
/// Refuses connections at once: the test event's endpoint.
const CLOSED_ENDPOINT: &str = "http://127.0.0.1:9/cb";

fn submission(batch_id: i64) -> Value {
    json!({"batch_id": batch_id, "batch_name": "spring", "max_attempts": 2,
    "calling_hours": {"start": "09:00", "end": "21:00", "days": ["mon", "tue"]},
    "data": [
        {"phone_number": "9876500100", "custom_data": {"customer_id": "CUST001"}},
        {"phone_number": 9876500101u64},
        {"phone_number": "98765x"}
    ]})
}

impl Checker<'_> {
    fn operation(&self, method: &str, path: &str) -> &Value {
        &self.doc["paths"][path][method.to_lowercase()]
    }

    /// The documented schema of this answer, by status and content type.
    fn response_schema(&self, method: &str, path: &str, reply: &Reply) -> Result<Value, String> {
        let op = self.operation(method, path);
        let responses = &op["responses"];
        let documented = responses
            .get(reply.status.to_string())
            .or_else(|| responses.get("default"))
            .ok_or_else(|| {
                format!(
                    "{method} {path}: status {} is not documented ({})",
                    reply.status, reply.text
                )
            })?;
        let documented = match documented.get("$ref").and_then(Value::as_str) {
            Some(r) => self.resolve(r).ok_or("unresolvable response $ref")?,
            None => documented,
        };
        let content_type = reply
            .headers
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        let mime = |s: &str| {
            s.split(';')
                .next()
                .unwrap_or("")
                .trim()
                .to_ascii_lowercase()
        };
        let content = documented["content"]
            .as_object()
            .ok_or_else(|| format!("{method} {path} {}: no content documented", reply.status))?;
        let (_, media) = content
            .iter()
            .find(|(ct, _)| mime(ct) == mime(content_type))
            .ok_or_else(|| {
                format!(
                    "{method} {path} {}: content type `{content_type}` not documented (only {:?})",
                    reply.status,
                    content.keys().collect::<Vec<_>>()
                )
            })?;
        Ok(media["schema"].clone())
    }

    /// Asserts the answer is documented and, when JSON, has the documented shape.
    fn assert_documented(&self, method: &str, path: &str, reply: &Reply) {
        let schema = self
            .response_schema(method, path, reply)
            .unwrap_or_else(|e| panic!("{e}"));
        let is_json = reply
            .headers
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|ct| ct.starts_with("application/json"));
        if is_json {
            let errors = self.check(&schema, &reply.json());
            assert!(
                errors.is_empty(),
                "{method} {path} {}: the answer differs from the document:\n{}\n{}",
                reply.status,
                errors.join("\n"),
                reply.text
            );
        } else {
            assert_eq!(schema["type"], "string", "{method} {path}: non-JSON answer");
        }
    }

    fn assert_request_documented(&self, method: &str, path: &str, body: &Value) {
        let schema =
            &self.operation(method, path)["requestBody"]["content"]["application/json"]["schema"];
        assert!(
            !schema.is_null(),
            "{method} {path}: no JSON request body documented"
        );
        let errors = self.check(schema, body);
        assert!(
            errors.is_empty(),
            "{method} {path}: the test's request differs from the document: {errors:?}"
        );
    }

    fn is_secured(&self, method: &str, path: &str) -> bool {
        self.operation(method, path)["security"]
            .as_array()
            .is_some_and(|s| s.iter().any(|r| r.get("api_key").is_some()))
    }
}

/// A real request for a documented operation: path parameters filled, a body where one is
/// documented.
fn concrete(path: &str, fx: &Fixture) -> String {
    let batch = if path.ends_with("/cancel") {
        "777"
    } else {
        "12345"
    };
    path.replace("{batch_id}", batch)
        .replace("{call_id}", &fx.call_id)
        .replace("{event_id}", &fx.event_id)
        .replace("{prompt_id}", &fx.prompt_id)
        .replace("{attempt}", "1")
        .replace("{key_id}", &fx.key_id)
        .replace("{phone_number}", LISTED_NUMBER)
}

fn request_body(method: &str, path: &str, fx: &Fixture) -> Option<Value> {
    match (method, path) {
        ("POST", p) if p.contains("insertdataincallqueue") => Some(submission(12345)),
        ("POST", "/api/v1/controls/dispatch-calls") => Some(json!({"batch_id": 12345})),
        ("POST", "/api/v1/callbacks/redeliver") => Some(json!({"event_ids": [fx.event_id]})),
        ("POST", "/api/v1/prompts") => Some(json!({"text": "Hello.", "language": "en"})),
        ("PUT", "/api/v1/account/callback") => Some(json!({"url": CLOSED_ENDPOINT})),
        ("POST", "/api/v1/dnc") => Some(json!({"phone_numbers": [LISTED_NUMBER]})),
        _ => None,
    }
}

async fn send(
    app: &TestApp,
    method: &str,
    url: &str,
    key: Option<&str>,
    body: Option<&Value>,
) -> Reply {
    let method = reqwest::Method::from_bytes(method.as_bytes()).expect("method");
    let mut req = app.http.request(method, format!("{}{url}", app.base));
    if let Some(k) = key {
        req = req.header("X-API-KEY", k);
    }
    if let Some(b) = body {
        req = req.json(b);
    }
    app.raw(req).await
}

async fn fetch_document(app: &TestApp) -> Value {
    let r = app
        .raw(app.http.get(format!("{}/api/v1/openapi.json", app.base)))
        .await;
    assert_eq!(r.status, 200, "the document is public: {}", r.text);
    assert!(
        r.headers
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|ct| ct.starts_with("application/json"))
    );
    r.json()
}

async fn fixture(app: &TestApp, c: &Client, doc: &Value) -> Fixture {
    let checker = Checker::new(doc);
    let insert = "/api/v1/queues/insertdataincallqueue/";
    for batch in [12345, 777] {
        let body = submission(batch);
        checker.assert_request_documented("POST", insert, &body);
        let r = c.insert(&body).await;
        assert_eq!(r.status, 200, "{}", r.text);
    }
    // Batch 777 cancelled: its calls get `call_cancelled` events (pending callbacks).
    let r = c.post_raw("/api/v1/batches/777/cancel", None, "").await;
    assert_eq!(r.status, 200, "{}", r.text);
    // Its calls are listed with their latest callback body (the other batch's as queued entries).
    let r = c.get("/api/v1/queues/batch-status/777").await;
    checker.assert_documented("GET", "/api/v1/queues/batch-status/{batch_id}", &r);
    let status = r.json();
    assert_eq!(status["calls"][0]["event_type"], "call_cancelled");
    let call_id = status["calls"][0]["call_id"]
        .as_str()
        .expect("a call")
        .to_owned();
    let event_id = status["calls"][0]["event_id"]
        .as_str()
        .expect("an event")
        .to_owned();
    // An attempt and two delivery tries on record, so no list of the answers is empty.
    app.sql(&format!(
        "INSERT INTO call_attempts (call_pk, attempt, state, ended_at, disposition, hangup_cause) \
             SELECT id, 1, 'ended', now(), 'busy', 17 FROM calls WHERE call_id = '{call_id}'"
    ))
    .await;
    app.sql(&format!(
        "UPDATE call_events SET delivery_status = 'failed', delivery_attempts = 2, \
             last_error = 'HTTP 503' WHERE event_id = '{event_id}'; {}",
        two_tries_sql(&event_id, "down")
    ))
    .await;
    // A prompt, and a recording of the attempt stored as the upload would store it.
    let r = app
        .raw(
            app.http
                .post(c.url("/api/v1/prompts"))
                .header("X-API-KEY", &c.key)
                .json(&json!({"text": "Hello there."})),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let prompt_id = r.json()["prompt_id"].as_str().expect("prompt").to_owned();
    let key = format!("recordings/fixture/{call_id}/1.wav");
    let file = std::path::Path::new(&app.env.config.recordings_store).join(&key);
    std::fs::create_dir_all(file.parent().expect("dir")).expect("recordings dir");
    std::fs::write(&file, b"RIFF\x24\0\0\0WAVE").expect("recording file");
    app.sql(&format!(
        "INSERT INTO recordings (call_pk, attempt, account_id, object_key, bytes, duration_seconds, expires_at) \
             SELECT id, 1, account_id, '{key}', 12, 0, now() + interval '1 day' FROM calls WHERE call_id = '{call_id}'"
    ))
    .await;
    // A second key (one is revoked), and a listed number (one entry is removed).
    let r = c.post_json("/api/v1/account/keys", &json!({})).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let key_id = r.json()["key_id"].to_string();
    let r = c
        .post_json("/api/v1/dnc", &json!({"phone_numbers": [LISTED_NUMBER]}))
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    Fixture {
        call_id,
        event_id,
        prompt_id,
        key_id,
    }
}

/// Asserts every member of `these` is in `within`; `what` names the ones that are not.
#[track_caller]
fn assert_none_outside(
    these: &BTreeSet<(String, String)>,
    within: &BTreeSet<(String, String)>,
    what: &str,
) {
    let outside: Vec<_> = these.difference(within).collect();
    assert_eq!(outside, Vec::<&(String, String)>::new(), "{what}");
}

#[tokio::test]
async fn document_lists_exactly_the_routes_the_application_serves() {
    let app = TestApp::spawn().await;
    let doc = fetch_document(&app).await;
    assert!(
        doc["openapi"].as_str().is_some_and(|v| v.starts_with("3.")),
        "{}",
        doc["openapi"]
    );
    assert_eq!(
        doc["components"]["securitySchemes"]["api_key"],
        json!({"type": "apiKey", "in": "header", "name": "X-API-KEY",
               "description": doc["components"]["securitySchemes"]["api_key"]["description"]})
    );
    let documented = documented_operations(&doc);
    let registered = registered_routes();
    assert!(
        registered.len() >= 10,
        "route parsing broke: {registered:?}"
    );
    let contract: BTreeSet<(String, String)> = CONTRACT
        .iter()
        .map(|(m, p)| (m.to_string(), p.to_string()))
        .collect();
    assert_none_outside(
        &documented,
        &registered,
        "documented but not registered in routes::configure",
    );
    assert_none_outside(
        &registered,
        &documented,
        "registered in routes::configure but not documented",
    );
    assert_none_outside(
        &contract,
        &documented,
        "endpoints of the contract missing from the document",
    );
    assert_none_outside(
        &documented,
        &contract,
        "documented operations the contract does not list",
    );
    // The dispatch body is optional; the submission's is not.
    let body_required = |p: &str| doc["paths"][p]["post"]["requestBody"]["required"].clone();
    assert_ne!(
        body_required("/api/v1/controls/dispatch-calls"),
        json!(true)
    );
    assert_eq!(
        body_required("/api/v1/queues/insertdataincallqueue/"),
        json!(true)
    );
    // Operation ids are unique (generators name methods after them).
    let mut ids = BTreeSet::new();
    for (m, p) in &documented {
        let id = doc["paths"][p][m.to_lowercase()]["operationId"]
            .as_str()
            .unwrap_or_else(|| panic!("{m} {p}: no operationId"));
        assert!(ids.insert(id.to_owned()), "operationId {id} twice");
    }
}

#[tokio::test]
async fn every_documented_operation_answers_as_documented() {
    // Loopback callbacks: the test event goes to a closed local port and fails at once.
    let app = TestApp::spawn_with(|c| c.allow_http_loopback_callbacks = true).await;
    let acme = app.account("ACME").await;
    let doc = fetch_document(&app).await;
    let checker = Checker::new(&doc);
    let fx = fixture(&app, &acme, &doc).await;
    let documented = documented_operations(&doc);
    // Submissions first, then reads, then control (pause before resume), the callback endpoint
    // set before its test and removed last.
    let rank = |(m, p): &(String, String)| match (m.as_str(), p.as_str()) {
        (_, p) if p.contains("insertdataincallqueue") => 0,
        ("GET", _) => 1,
        (_, p) if p.ends_with("/pause") => 2,
        (_, p) if p.ends_with("/resume") => 3,
        ("PUT", "/api/v1/account/callback") => 4,
        ("DELETE", "/api/v1/account/callback") => 6,
        _ => 5,
    };
    let mut ordered: Vec<&(String, String)> = documented.iter().collect();
    ordered.sort_by_key(|op| rank(op));
    for (method, path) in ordered {
        let url = concrete(path, &fx);
        let body = request_body(method, path, &fx);
        if let Some(b) = &body {
            checker.assert_request_documented(method, path, b);
        }
        let secured = checker.is_secured(method, path);
        let key = secured.then_some(acme.key.as_str());
        let r = send(&app, method, &url, key, body.as_ref()).await;
        assert_eq!(r.status, 200, "{method} {url}: {}", r.text);
        checker.assert_documented(method, path, &r);
        // The security declaration is what the application asks for.
        let anonymous = send(&app, method, &url, None, body.as_ref()).await;
        if secured {
            assert_eq!(anonymous.status, 401, "{method} {url}: {}", anonymous.text);
            checker.assert_documented(method, path, &anonymous);
        } else {
            assert_eq!(
                anonymous.status, 200,
                "{method} {url} is documented as public"
            );
        }
    }
    // The CSV export is documented too.
    let r = acme
        .get("/api/v1/queues/batch-status/12345?format=csv")
        .await;
    assert_eq!(r.status, 200);
    checker.assert_documented("GET", "/api/v1/queues/batch-status/{batch_id}", &r);
}

#[tokio::test]
async fn other_methods_on_documented_paths_are_405() {
    let (app, acme) = TestApp::with_account("ACME").await;
    let doc = fetch_document(&app).await;
    let fx = Fixture {
        call_id: "6f9c8d5e-1a2b-4c3d-8e9f-001122334455".into(),
        event_id: "evt_00000000000000000000000000000000".into(),
        prompt_id: "prm_00000000000000000000000000000000".into(),
        key_id: "1".into(),
    };
    let documented = documented_operations(&doc);
    let paths: BTreeSet<&String> = documented.iter().map(|(_, p)| p).collect();
    for path in paths {
        for m in ["GET", "POST", "PUT", "PATCH", "DELETE"] {
            if documented.contains(&(m.to_owned(), path.clone())) {
                continue;
            }
            let r = send(&app, m, &concrete(path, &fx), Some(&acme.key), None).await;
            assert_eq!(
                r.status, 405,
                "{m} {path} is served but not documented: {}",
                r.text
            );
            assert_eq!(r.error_code(), "method_not_allowed");
        }
    }
}

#[tokio::test]
async fn error_answers_have_the_documented_shape() {
    let (app, acme) = TestApp::with_account("ACME").await;
    let doc = fetch_document(&app).await;
    let checker = Checker::new(&doc);
    let insert = "/api/v1/queues/insertdataincallqueue/";

    // 400: a field missing, named in the message.
    let r = acme.insert(&json!({"batch_id": 1})).await;
    assert_eq!(r.status, 400);
    checker.assert_documented("POST", insert, &r);
    assert!(r.message().contains("data"));
    // 400 on a path parameter.
    let status_path = "/api/v1/queues/batch-status/{batch_id}";
    let r = acme.get("/api/v1/queues/batch-status/-4").await;
    assert_eq!(r.status, 400);
    checker.assert_documented("GET", status_path, &r);
    // 404 of an unknown batch.
    let r = acme.get("/api/v1/queues/batch-status/999").await;
    assert_eq!(r.status, 404);
    checker.assert_documented("GET", status_path, &r);
    // 415.
    let r = acme.post_raw(insert, Some("text/plain"), "{}").await;
    assert_eq!(r.status, 415);
    checker.assert_documented("POST", insert, &r);
    // 403 of a suspended account (documented on every authenticated operation).
    app.sql("UPDATE accounts SET status = 'suspended'").await;
    let r = acme.get("/api/v1/account").await;
    assert_eq!(r.status, 403);
    checker.assert_documented("GET", "/api/v1/account", &r);
    app.sql("UPDATE accounts SET status = 'active'").await;
    // An unknown path still answers the documented error shape.
    let r = acme.get("/api/v1/no-such-thing").await;
    assert_eq!(r.status, 404);
    let errors = checker.check(&json!({"$ref": "#/components/schemas/Error"}), &r.json());
    assert!(errors.is_empty(), "{errors:?}");
}
