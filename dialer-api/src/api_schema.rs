//! OpenAPI schemas the derives cannot infer: fields typed with dialer-core's enums and structs
//! (foreign types, so no `ToSchema` impl can be written for them here), raw JSON kept verbatim
//! (`RawValue`), and the bodies that are parsed by hand (see `json_body`) to name the offending
//! field in errors. Enumerations are built from the enums' own `ALL` lists, so a new value shows
//! up in the document by itself. Used with `#[schema(schema_with = ...)]` and by
//! `routes::openapi`.

use serde_json::Value;
use utoipa::openapi::schema::{
    AdditionalProperties, AnyOfBuilder, ArrayBuilder, KnownFormat, ObjectBuilder, SchemaFormat,
    SchemaType, Type,
};
use utoipa::openapi::{Ref, RefOr, Schema};
use utoipa::{PartialSchema, ToSchema};

use dialer_core::domain::{BatchStatus, CallStatus, Disposition, EventType};

use crate::ingest::rows::RejectReason;

fn string_enum<'a>(values: impl IntoIterator<Item = &'a str>, nullable: bool) -> ObjectBuilder {
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

fn integer() -> ObjectBuilder {
    ObjectBuilder::new()
        .schema_type(Type::Integer)
        .format(Some(SchemaFormat::KnownFormat(KnownFormat::Int64)))
}

fn typed(t: Type, nullable: bool) -> ObjectBuilder {
    if nullable {
        ObjectBuilder::new().schema_type(SchemaType::from_iter([t, Type::Null]))
    } else {
        ObjectBuilder::new().schema_type(t)
    }
}

fn time(nullable: bool) -> ObjectBuilder {
    typed(Type::String, nullable).format(Some(SchemaFormat::KnownFormat(KnownFormat::DateTime)))
}

fn reference(name: &str) -> RefOr<Schema> {
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
    o
}

/// Calls per call state, only the states present (a `batch_completed` event).
fn present_counts() -> ObjectBuilder {
    ObjectBuilder::new()
        .schema_type(Type::Object)
        .property_names(Some(call_status()))
        .additional_properties(Some(integer()))
}

/// A JSON object the client chose (`custom_data`), echoed verbatim.
fn client_object(nullable: bool) -> ObjectBuilder {
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
            ("counts", present_counts()),
            ("occurred_at", time(false)),
        ];
        for (name, schema) in fields {
            o = o.property(name, schema).required(name);
        }
        o.into()
    }
}

impl ToSchema for BatchCompletedEvent {}

/// The account's settings (`dialer_core::models::AccountSettings`), never its secrets.
pub struct AccountSettings;

impl PartialSchema for AccountSettings {
    fn schema() -> RefOr<Schema> {
        let s = |nullable| typed(Type::String, nullable);
        let list = || ArrayBuilder::new().items(typed(Type::String, false));
        let mut limits = ObjectBuilder::new().schema_type(Type::Object);
        for name in [
            "max_rows_per_request",
            "max_queued_calls",
            "max_calls_per_day",
            "calls_per_second",
            "max_concurrent_calls",
            "api_requests_per_second",
        ] {
            limits = limits.property(name, integer()).required(name);
        }
        let fields: Vec<(&str, RefOr<Schema>)> = vec![
            ("accountcode", s(false).into()),
            ("name", s(false).into()),
            (
                "account_status",
                s(false)
                    .description(Some("`active` or `suspended`"))
                    .into(),
            ),
            (
                "default_country",
                s(false)
                    .description(Some("ISO 3166 code used to read national numbers"))
                    .into(),
            ),
            ("timezone", s(false).into()),
            (
                "calling_hours",
                client_object(true)
                    .description(Some(
                        "`{\"start\": \"09:00\", \"end\": \"21:00\", \"days\": [\"mon\", ...]}` or null",
                    ))
                    .into(),
            ),
            ("caller_id", s(true).into()),
            ("dial_context", s(false).into()),
            ("dial_exten", s(false).into()),
            ("ring_timeout_seconds", integer().into()),
            ("max_attempts", integer().into()),
            ("retry_delay_seconds", integer().into()),
            ("retry_on", list().into()),
            ("max_call_seconds", integer().into()),
            ("allowed_countries", list().into()),
            ("allowed_prefixes", list().into()),
            ("redial_window_hours", integer().into()),
            ("limits", limits.into()),
            ("callback_url", s(true).into()),
            ("callback_batch_events", typed(Type::Boolean, false).into()),
            (
                "callback_secret_rotating_until",
                time(true)
                    .description(Some(
                        "end of the grace period of a secret rotation in progress",
                    ))
                    .into(),
            ),
            ("created_at", time(false).into()),
        ];
        let mut o = ObjectBuilder::new().schema_type(Type::Object);
        for (name, schema) in fields {
            o = o.property(name, schema).required(name);
        }
        o.into()
    }
}

impl ToSchema for AccountSettings {}

/// The body of `POST /queues/insertdataincallqueue/` (parsed by hand, see `ingest`).
pub struct BatchSubmission;

impl PartialSchema for BatchSubmission {
    fn schema() -> RefOr<Schema> {
        let row = ObjectBuilder::new()
            .schema_type(Type::Object)
            .property(
                "phone_number",
                ObjectBuilder::new()
                    .schema_type(SchemaType::from_iter([Type::String, Type::Integer]))
                    .description(Some(
                        "as the client stores it (a number is taken as its digits); echoed \
                         verbatim, normalised to E.164 with the account's country",
                    )),
            )
            .required("phone_number")
            .property(
                "custom_data",
                client_object(true)
                    .description(Some("echoed verbatim in every callback for the call")),
            );
        let calling_hours = ObjectBuilder::new()
            .schema_type(SchemaType::from_iter([Type::Object, Type::Null]))
            .property("start", typed(Type::String, false).examples(["09:00"]))
            .property("end", typed(Type::String, false).examples(["21:00"]))
            .property(
                "days",
                ArrayBuilder::new().items(string_enum(
                    ["mon", "tue", "wed", "thu", "fri", "sat", "sun"],
                    false,
                )),
            )
            .required("start")
            .required("end");
        let retryable: Vec<&str> = Disposition::ALL
            .iter()
            .filter(|d| d.is_retryable())
            .map(|d| d.as_str())
            .collect();
        let o = ObjectBuilder::new()
            .schema_type(Type::Object)
            .description(Some(
                "Optional batch settings are taken when the batch is first created; each \
                 defaults to the account's setting.",
            ))
            .property(
                "batch_id",
                integer().minimum(Some(1)).description(Some(
                    "chosen by the client, scoped to the account; posting again adds numbers",
                )),
            )
            .required("batch_id")
            .property(
                "data",
                ArrayBuilder::new().items(row).description(Some(
                    "the rows (at most the account's max_rows_per_request)",
                )),
            )
            .required("data")
            .property(
                "batch_name",
                typed(Type::String, true).max_length(Some(200)),
            )
            .property("caller_id", typed(Type::String, true).max_length(Some(80)))
            .property(
                "max_attempts",
                typed(Type::Integer, true)
                    .minimum(Some(1))
                    .maximum(Some(20)),
            )
            .property(
                "retry_delay_seconds",
                typed(Type::Integer, true).minimum(Some(0)),
            )
            .property(
                "retry_on",
                ArrayBuilder::new()
                    .schema_type(SchemaType::from_iter([Type::Array, Type::Null]))
                    .items(string_enum(retryable, false)),
            )
            .property("calling_hours", calling_hours)
            .property("priority", typed(Type::Integer, true))
            .property(
                "expires_at",
                time(true).description(Some("calls not dialed by then end as `expired`")),
            )
            .property(
                "dispatch",
                typed(Type::Boolean, true)
                    .description(Some("true: dial without a separate dispatch call")),
            );
        o.into()
    }
}

impl ToSchema for BatchSubmission {}

/// The optional body of `POST /controls/dispatch-calls`.
pub struct DispatchRequest;

impl PartialSchema for DispatchRequest {
    fn schema() -> RefOr<Schema> {
        ObjectBuilder::new()
            .schema_type(Type::Object)
            .description(Some(
                "optional (an empty body dispatches every batch of the account with queued calls, \
                 paused ones excepted)",
            ))
            .property(
                "batch_id",
                typed(Type::Integer, true)
                    .minimum(Some(1))
                    .description(Some("only this batch")),
            )
            .into()
    }
}

impl ToSchema for DispatchRequest {}

/// The body of `POST /callbacks/redeliver`: every failed event, or the named ones.
pub struct RedeliverRequest;

impl PartialSchema for RedeliverRequest {
    fn schema() -> RefOr<Schema> {
        AnyOfBuilder::new()
            .item(
                ObjectBuilder::new()
                    .schema_type(Type::Object)
                    .property("status", string_enum(["failed"], false))
                    .required("status")
                    .description(Some("every failed event of the account")),
            )
            .item(
                ObjectBuilder::new()
                    .schema_type(Type::Object)
                    .property(
                        "event_ids",
                        ArrayBuilder::new()
                            .items(typed(Type::String, false))
                            .min_items(Some(1))
                            .max_items(Some(crate::callbacks::MAX_REDELIVER_IDS)),
                    )
                    .required("event_ids")
                    .description(Some(
                        "these events, whether failed, skipped or delivered (pending ones are left alone)",
                    )),
            )
            .into()
    }
}

impl ToSchema for RedeliverRequest {}

/// Every schema above that is referenced by name, for the document's components.
pub fn components() -> Vec<(String, RefOr<Schema>)> {
    vec![
        (CallEvent::name().into_owned(), CallEvent::schema()),
        (QueuedCall::name().into_owned(), QueuedCall::schema()),
        (
            BatchCompletedEvent::name().into_owned(),
            BatchCompletedEvent::schema(),
        ),
    ]
}
