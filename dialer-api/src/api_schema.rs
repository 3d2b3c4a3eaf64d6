//! OpenAPI schemas of what the derives cannot infer beyond the data (see `data_schema`): the
//! account's settings and the bodies that are parsed by hand (see `json_body`) to name the
//! offending field in errors, and the component list of `routes::openapi`.

use utoipa::openapi::schema::{AnyOfBuilder, ArrayBuilder, ObjectBuilder, SchemaType, Type};
use utoipa::openapi::{RefOr, Schema};
use utoipa::{PartialSchema, ToSchema};

use dialer_core::call_flow::{MAX_GATHER_DIGITS, MAX_GATHER_TIMEOUT_SECONDS};
use dialer_core::domain::{AmdPolicy, Disposition};

use crate::data_schema::{
    BatchCompletedEvent, CallEvent, QueuedCall, client_object, integer, string_enum, time, typed,
};

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
            .property(
                "priority",
                typed(Type::Integer, true).description(Some(
                    "higher first among the account's batches waiting to dial (default 0); \
                     other accounts keep their share",
                )),
            )
            .property(
                "expires_at",
                time(true).description(Some(
                    "calls not dialed by then (queued, paused, waiting for calling hours or a \
                     retry) end as `expired` within seconds",
                )),
            )
            .property(
                "dispatch",
                typed(Type::Boolean, true)
                    .description(Some("true: dial without a separate dispatch call")),
            )
            .property(
                "amd",
                string_enum(AmdPolicy::ALL.iter().map(|a| a.as_str()), true).description(Some(
                    "answering-machine detection: `off` (default), `detect` (report who answered; \
                     go on as for a person), `hangup_machine`, `voicemail` (play \
                     `voicemail_prompt` to a machine after its greeting)",
                )),
            )
            .property(
                "message_prompt",
                typed(Type::String, true).description(Some(
                    "`prompt_id` of the prompt a person hears (everyone when `amd` is `off`)",
                )),
            )
            .property(
                "voicemail_prompt",
                typed(Type::String, true)
                    .description(Some("`prompt_id` played to a machine (`amd` `voicemail`)")),
            )
            .property(
                "gather",
                ObjectBuilder::new()
                    .schema_type(SchemaType::from_iter([Type::Object, Type::Null]))
                    .description(Some(
                        "keypresses after the message; `digits` then holds the keys without the \
                         finish key; `opt_out_digit` pressed first adds the number to the \
                         account's do-not-call list and ends the call",
                    ))
                    .property(
                        "max_digits",
                        integer()
                            .minimum(Some(1))
                            .maximum(Some(f64::from(MAX_GATHER_DIGITS))),
                    )
                    .required("max_digits")
                    .property(
                        "timeout_seconds",
                        integer()
                            .minimum(Some(1))
                            .maximum(Some(f64::from(MAX_GATHER_TIMEOUT_SECONDS))),
                    )
                    .required("timeout_seconds")
                    .property("finish_on_key", keypad_key())
                    .property("opt_out_digit", keypad_key()),
            )
            .property(
                "record",
                typed(Type::Boolean, true).description(Some(
                    "true: record each answered attempt (`recording_url`, `call_recording_ready`)",
                )),
            );
        o.into()
    }
}

impl ToSchema for BatchSubmission {}

/// One key of a phone's keypad.
fn keypad_key() -> ObjectBuilder {
    string_enum(
        ["0", "1", "2", "3", "4", "5", "6", "7", "8", "9", "*", "#"],
        false,
    )
}

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
            .property(
                "dry_run",
                typed(Type::Boolean, true).description(Some(
                    "true: change nothing, say what would dial now and why the rest would not",
                )),
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
                            .max_items(Some(crate::ops::callbacks::MAX_REDELIVER_IDS)),
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

/// The body of `PUT /account/callback`.
pub struct CallbackEndpointRequest;

impl PartialSchema for CallbackEndpointRequest {
    fn schema() -> RefOr<Schema> {
        ObjectBuilder::new()
            .schema_type(Type::Object)
            .property(
                "url",
                typed(Type::String, false)
                    .description(Some("https URL of a public address (the contract's rules)")),
            )
            .required("url")
            .property(
                "ca_certificate",
                typed(Type::String, true).description(Some(
                    "PEM of the CA that signed a private endpoint's certificate; null removes it; \
                     left out: unchanged",
                )),
            )
            .property(
                "batch_events",
                typed(Type::Boolean, false).description(Some(
                    "send `batch_completed` callbacks; left out: unchanged",
                )),
            )
            .into()
    }
}

impl ToSchema for CallbackEndpointRequest {}

/// The optional body of `POST /account/callback-secret/rotate`.
pub struct SecretRotationRequest;

impl PartialSchema for SecretRotationRequest {
    fn schema() -> RefOr<Schema> {
        ObjectBuilder::new()
            .schema_type(Type::Object)
            .description(Some("optional"))
            .property(
                "grace_hours",
                integer()
                    .minimum(Some(0))
                    .maximum(Some(crate::ops::callbacks::MAX_GRACE_HOURS))
                    .description(Some(
                        "how long the old secret keeps signing beside the new one (default 24)",
                    )),
            )
            .into()
    }
}

impl ToSchema for SecretRotationRequest {}

/// The optional body of `POST /account/keys`.
pub struct NewKeyRequest;

impl PartialSchema for NewKeyRequest {
    fn schema() -> RefOr<Schema> {
        ObjectBuilder::new()
            .schema_type(Type::Object)
            .description(Some("optional"))
            .property(
                "label",
                typed(Type::String, false)
                    .max_length(Some(crate::ops::api_keys::MAX_LABEL_CHARS))
                    .description(Some("what the key is for")),
            )
            .property(
                "mode",
                typed(Type::String, false)
                    .enum_values(Some(["live", "test"]))
                    .description(Some(
                        "`test`: a key of the account's test twin (`<accountcode>-test`), whose \
                     batches go through the whole platform to a simulated PBX only; default: \
                     the calling key's mode",
                    )),
            )
            .into()
    }
}

impl ToSchema for NewKeyRequest {}

/// The body of `POST /dnc`.
pub struct DncAddRequest;

impl PartialSchema for DncAddRequest {
    fn schema() -> RefOr<Schema> {
        ObjectBuilder::new()
            .schema_type(Type::Object)
            .property(
                "phone_numbers",
                ArrayBuilder::new()
                    .items(typed(Type::String, false))
                    .min_items(Some(1))
                    .max_items(Some(crate::ops::dnc::MAX_NUMBERS))
                    .description(Some("numbers as the account submits them")),
            )
            .required("phone_numbers")
            .property(
                "reason",
                typed(Type::String, false).max_length(Some(crate::ops::dnc::MAX_REASON_CHARS)),
            )
            .into()
    }
}

impl ToSchema for DncAddRequest {}

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

/// The JSON body of `POST /prompts`: text the platform speaks.
pub struct SpokenPrompt;

impl PartialSchema for SpokenPrompt {
    fn schema() -> RefOr<Schema> {
        ObjectBuilder::new()
            .schema_type(Type::Object)
            .property(
                "text",
                typed(Type::String, false)
                    .min_length(Some(1))
                    .max_length(Some(crate::speech::MAX_TEXT_CHARS))
                    .description(Some("what the prompt says")),
            )
            .required("text")
            .property(
                "language",
                typed(Type::String, false)
                    .examples(["en", "en-us", "hi"])
                    .description(Some("the voice's language (default `en`)")),
            )
            .into()
    }
}

impl ToSchema for SpokenPrompt {}
