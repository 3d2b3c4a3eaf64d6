//! OpenAPI schemas of the data the API shows that the derives cannot infer: fields typed with
//! dialer-core's enums and structs (foreign types, so no `ToSchema` impl can be written for them
//! here), times, raw JSON kept verbatim (`RawValue`) and the callback bodies. Enumerations are
//! built from the enums' own `ALL` lists, so a new value shows up in the document by itself.
//! Used with `#[schema(schema_with = ...)]` by the operations' views and the routes; a leaf (it
//! knows nothing of the operations), so both may use it.

use serde_json::Value;
use utoipa::openapi::schema::{
    AdditionalProperties, AnyOfBuilder, ArrayBuilder, KnownFormat, ObjectBuilder, SchemaFormat,
    SchemaType, Type,
};
use utoipa::openapi::{Ref, RefOr, Schema};
use utoipa::{PartialSchema, ToSchema};

use dialer_core::domain::{
    ANSWER_COUNT_KEYS, AnsweredBy, BatchStatus, CallStatus, Disposition, EventType,
};

use crate::ingest::rows::RejectReason;

pub(crate) fn string_enum<'a>(
    values: impl IntoIterator<Item = &'a str>,
    nullable: bool,
) -> ObjectBuilder {
    let mut values: Vec<Value> = values.into_iter().map(Value::from).collect();
    let schema_type = if nullable {
        values.push(Value::Null);
        SchemaType::from_iter([Type::String, Type::Null])
    } else {
        SchemaType::new(Type::String)
    };
    ObjectBuilder::new()
        .schema_type(schema_type)
        .enum_values(Some(values))
}

pub(crate) fn integer() -> ObjectBuilder {
    ObjectBuilder::new()
        .schema_type(Type::Integer)
        .format(Some(SchemaFormat::KnownFormat(KnownFormat::Int64)))
}

pub(crate) fn typed(t: Type, nullable: bool) -> ObjectBuilder {
    if nullable {
        ObjectBuilder::new().schema_type(SchemaType::from_iter([t, Type::Null]))
    } else {
        ObjectBuilder::new().schema_type(t)
    }
}

pub(crate) fn time(nullable: bool) -> ObjectBuilder {
    typed(Type::String, nullable).format(Some(SchemaFormat::KnownFormat(KnownFormat::DateTime)))
}

pub(crate) fn reference(name: &str) -> RefOr<Schema> {
    RefOr::Ref(Ref::from_schema_name(name))
}

/// `"success"`, the `status` of every successful answer.
pub fn success_status() -> ObjectBuilder {
    string_enum(["success"], false)
}

/// `"error"`, the `status` of every error answer.
pub fn error_status() -> ObjectBuilder {
    string_enum(["error"], false)
}

pub fn batch_status() -> ObjectBuilder {
    string_enum(BatchStatus::ALL.iter().map(|s| s.as_str()), false).description(Some(
        "`pending` (nothing dispatched yet), `dispatching`, `paused`, `completed` (every call \
         has its final outcome), `cancelled`",
    ))
}

pub fn call_status() -> ObjectBuilder {
    string_enum(CallStatus::ALL.iter().map(|s| s.as_str()), false)
}

pub fn event_type() -> ObjectBuilder {
    string_enum(EventType::ALL.iter().map(|e| e.as_str()), false)
}

pub fn reject_reason() -> ObjectBuilder {
    string_enum(RejectReason::ALL.iter().map(|s| s.as_str()), false)
}

pub fn delivery_status() -> ObjectBuilder {
    string_enum(["pending", "delivered", "failed", "skipped"], false)
}

/// `total_calls`, `completed_calls`, `failed_calls`, `pending_calls` (they add up).
pub fn totals() -> ObjectBuilder {
    let mut o = ObjectBuilder::new().schema_type(Type::Object);
    for (name, what) in [
        ("total_calls", "every call of the batch"),
        ("completed_calls", "calls whose final outcome is answered"),
        (
            "failed_calls",
            "calls that ended without an answer after their last attempt",
        ),
        (
            "pending_calls",
            "all others (queued, waiting for a retry or calling hours, in progress)",
        ),
    ] {
        o = o
            .property(name, integer().description(Some(what)))
            .required(name);
    }
    o
}

/// Calls per call state, every state present (zeros included).
pub fn status_counts() -> ObjectBuilder {
    let mut o = ObjectBuilder::new()
        .schema_type(Type::Object)
        .description(Some(
            "calls per call state; every state is present, zeros included",
        ));
    for s in CallStatus::ALL {
        o = o.property(s.as_str(), integer()).required(s.as_str());
    }
    for (key, what) in ANSWER_COUNT_KEYS.into_iter().zip([
        "calls a person answered (answering-machine detection, latest attempt)",
        "calls a machine answered (answering-machine detection, latest attempt)",
        "calls whose callee pressed the opt-out digit",
    ]) {
        o = o
            .property(key, integer().description(Some(what)))
            .required(key);
    }
    o
}

/// A JSON object the client chose (`custom_data`), echoed verbatim.
pub(crate) fn client_object(nullable: bool) -> ObjectBuilder {
    typed(Type::Object, nullable).additional_properties(Some(AdditionalProperties::FreeForm(true)))
}

/// `calls` of a batch status: each call's latest callback body, or a queued entry.
pub fn call_entries() -> ArrayBuilder {
    ArrayBuilder::new().items(
        AnyOfBuilder::new()
            .item(reference(CallEvent::name().as_ref()))
            .item(reference(QueuedCall::name().as_ref())),
    )
}

/// The exact body of an event (any event type).
pub fn event_body() -> AnyOfBuilder {
    AnyOfBuilder::new()
        .item(reference(CallEvent::name().as_ref()))
        .item(reference(BatchCompletedEvent::name().as_ref()))
}

pub fn phone_as_submitted() -> ObjectBuilder {
    ObjectBuilder::new()
        .schema_type(SchemaType::from_iter([Type::String, Type::Integer, Type::Null]))
        .description(Some(
            "the row's `phone_number` exactly as submitted (a string or a number); null when missing",
        ))
}

pub fn raw_custom_data() -> ObjectBuilder {
    client_object(true).description(Some("the row's `custom_data`, verbatim"))
}

pub fn uuid() -> ObjectBuilder {
    typed(Type::String, false).format(Some(SchemaFormat::KnownFormat(KnownFormat::Uuid)))
}

pub fn time_or_null() -> ObjectBuilder {
    time(true)
}

pub fn time_required() -> ObjectBuilder {
    time(false)
}

/// The body of a call's callback (`call_*` events), as POSTed to the account's callback URL.
pub struct CallEvent;

impl PartialSchema for CallEvent {
    fn schema() -> RefOr<Schema> {
        call_entry(false).into()
    }
}

impl ToSchema for CallEvent {}

/// A call of a batch before its first event: the keys of a callback body, `call_status`
/// `queued`, and null for what has not happened yet.
pub struct QueuedCall;

impl PartialSchema for QueuedCall {
    fn schema() -> RefOr<Schema> {
        call_entry(true).into()
    }
}

impl ToSchema for QueuedCall {}

fn call_entry(queued: bool) -> ObjectBuilder {
    let s = |nullable| typed(Type::String, nullable);
    let (event_id, event_type, status, occurred_at) = if queued {
        (
            typed(Type::Null, false),
            typed(Type::Null, false),
            string_enum([CallStatus::Queued.as_str()], false),
            typed(Type::Null, false),
        )
    } else {
        (
            s(false).description(Some("`evt_...`; clients dedupe on it")),
            string_enum(
                EventType::ALL
                    .iter()
                    .filter(|e| **e != EventType::BatchCompleted)
                    .map(|e| e.as_str()),
                false,
            ),
            call_status(),
            time(false),
        )
    };
    let fields: Vec<(&str, ObjectBuilder)> = vec![
        ("event_id", event_id),
        ("event_type", event_type),
        ("accountcode", s(false)),
        ("batch_id", integer()),
        ("call_id", uuid()),
        (
            "phone_number",
            s(false).description(Some("exactly as submitted")),
        ),
        ("phone_number_e164", s(false)),
        ("call_status", status),
        (
            "disposition",
            string_enum(Disposition::ALL.iter().map(|d| d.as_str()), true),
        ),
        (
            "duration",
            integer().description(Some("whole seconds from answer to hang-up")),
        ),
        ("start_time", time(true)),
        ("answer_time", time(true)),
        ("end_time", time(true)),
        ("recording_url", s(true)),
        ("custom_data", client_object(true)),
        ("server_code", s(true)),
        ("error_message", s(true)),
        ("attempt", integer()),
        ("will_retry", typed(Type::Boolean, false)),
        (
            "sequence",
            integer().description(Some("grows by one per event of a call")),
        ),
        ("occurred_at", occurred_at),
        (
            "answered_by",
            string_enum(AnsweredBy::ALL.iter().map(|a| a.as_str()), true).description(Some(
                "who answered, as the PBX's answering-machine detection said (null without it)",
            )),
        ),
        (
            "amd_cause",
            s(true).description(Some("the PBX's reason, e.g. `LONGGREETING-1500-1500`")),
        ),
        (
            "digits",
            s(true).description(Some(
                "the keys pressed when gathering ended, without the finish key (possibly empty)",
            )),
        ),
        (
            "opted_out",
            typed(Type::Boolean, true)
                .description(Some("the callee pressed the batch's opt-out digit first")),
        ),
        (
            "recording_duration",
            typed(Type::Integer, true)
                .description(Some("whole seconds of the attempt's recording")),
        ),
    ];
    let mut o = ObjectBuilder::new().schema_type(Type::Object);
    for (name, schema) in fields {
        o = o.property(name, schema).required(name);
    }
    o
}

/// The body of a `batch_completed` callback (accounts that subscribe to batch events).
pub struct BatchCompletedEvent;

impl PartialSchema for BatchCompletedEvent {
    fn schema() -> RefOr<Schema> {
        let mut o = ObjectBuilder::new().schema_type(Type::Object);
        let fields: Vec<(&str, ObjectBuilder)> = vec![
            ("event_id", typed(Type::String, false)),
            (
                "event_type",
                string_enum([EventType::BatchCompleted.as_str()], false),
            ),
            ("accountcode", typed(Type::String, false)),
            ("batch_id", integer()),
            ("total_calls", integer()),
            ("completed_calls", integer()),
            ("failed_calls", integer()),
            ("counts", status_counts()),
            ("occurred_at", time(false)),
        ];
        for (name, schema) in fields {
            o = o.property(name, schema).required(name);
        }
        o.into()
    }
}

impl ToSchema for BatchCompletedEvent {}
