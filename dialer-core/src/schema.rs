//! Diesel schema of `migrations/` (kept by hand; `schema_matches_database` in the tests checks
//! it against a migrated database).

diesel::table! {
    accounts (id) {
        id -> Int8,
        accountcode -> Text,
        name -> Text,
        status -> Text,
        default_country -> Text,
        timezone -> Text,
        calling_hours -> Nullable<Jsonb>,
        caller_id -> Nullable<Text>,
        dial_context -> Text,
        dial_exten -> Text,
        ring_timeout_seconds -> Int4,
        max_attempts -> Int4,
        retry_delay_seconds -> Int4,
        retry_on -> Array<Text>,
        max_call_seconds -> Int4,
        allowed_countries -> Array<Text>,
        allowed_prefixes -> Array<Text>,
        redial_window_hours -> Int4,
        max_rows_per_request -> Int4,
        max_queued_calls -> Int8,
        max_calls_per_day -> Int8,
        calls_per_second -> Int4,
        max_concurrent_calls -> Int4,
        api_requests_per_second -> Int4,
        callback_url -> Nullable<Text>,
        callback_secret -> Text,
        callback_secret_previous -> Nullable<Text>,
        callback_secret_previous_until -> Nullable<Timestamptz>,
        callback_batch_events -> Bool,
        callback_ca_cert -> Nullable<Text>,
        created_at -> Timestamptz,
        updated_at -> Timestamptz,
    }
}

diesel::table! {
    test_twins (account_id) {
        account_id -> Int8,
        live_account_id -> Int8,
    }
}

diesel::table! {
    api_keys (id) {
        id -> Int8,
        account_id -> Int8,
        key_hash -> Bytea,
        key_prefix -> Text,
        label -> Text,
        created_at -> Timestamptz,
        last_used_at -> Nullable<Timestamptz>,
        revoked_at -> Nullable<Timestamptz>,
    }
}

diesel::table! {
    asterisk_servers (id) {
        id -> Int8,
        code -> Text,
        host -> Text,
        port -> Int4,
        username -> Text,
        secret -> Text,
        max_channels -> Int4,
        max_cps -> Int4,
        channel_template -> Text,
        enabled -> Bool,
        created_at -> Timestamptz,
        updated_at -> Timestamptz,
        simulated -> Bool,
    }
}

diesel::table! {
    batches (id) {
        id -> Int8,
        account_id -> Int8,
        batch_id -> Int8,
        name -> Nullable<Text>,
        caller_id -> Nullable<Text>,
        max_attempts -> Nullable<Int4>,
        retry_delay_seconds -> Nullable<Int4>,
        retry_on -> Nullable<Array<Text>>,
        calling_hours -> Nullable<Jsonb>,
        priority -> Int4,
        expires_at -> Nullable<Timestamptz>,
        auto_dispatch -> Bool,
        status -> Text,
        created_at -> Timestamptz,
        updated_at -> Timestamptz,
        dispatched_at -> Nullable<Timestamptz>,
        paused_at -> Nullable<Timestamptz>,
        cancelled_at -> Nullable<Timestamptz>,
        completed_at -> Nullable<Timestamptz>,
        amd -> Text,
        message_prompt -> Nullable<Text>,
        voicemail_prompt -> Nullable<Text>,
        gather -> Nullable<Jsonb>,
        record -> Bool,
    }
}

diesel::table! {
    calls (id) {
        id -> Int8,
        call_id -> Uuid,
        account_id -> Int8,
        batch_pk -> Int8,
        phone_raw -> Text,
        phone_e164 -> Text,
        phone_region -> Nullable<Text>,
        custom_data -> Nullable<Text>,
        status -> Text,
        disposition -> Nullable<Text>,
        attempts -> Int4,
        next_due_at -> Nullable<Timestamptz>,
        event_seq -> Int4,
        last_dialed_at -> Nullable<Timestamptz>,
        created_at -> Timestamptz,
        updated_at -> Timestamptz,
        dispatched_at -> Nullable<Timestamptz>,
        finished_at -> Nullable<Timestamptz>,
        answered_by -> Nullable<Text>,
        opted_out -> Bool,
    }
}

diesel::table! {
    call_attempts (id) {
        id -> Uuid,
        call_pk -> Int8,
        attempt -> Int4,
        server_id -> Nullable<Int8>,
        state -> Text,
        originated_at -> Timestamptz,
        started_at -> Nullable<Timestamptz>,
        answered_at -> Nullable<Timestamptz>,
        ended_at -> Nullable<Timestamptz>,
        disposition -> Nullable<Text>,
        hangup_cause -> Nullable<Int4>,
        error_message -> Nullable<Text>,
        account_id -> Nullable<Int8>,
        dispatcher_id -> Nullable<Text>,
        sent_at -> Nullable<Timestamptz>,
        answered_by -> Nullable<Text>,
        amd_cause -> Nullable<Text>,
        digits -> Nullable<Text>,
        opted_out -> Nullable<Bool>,
    }
}

diesel::table! {
    call_events (id) {
        id -> Int8,
        event_id -> Text,
        account_id -> Int8,
        batch_pk -> Int8,
        call_pk -> Nullable<Int8>,
        sequence -> Nullable<Int4>,
        event_type -> Text,
        body -> Text,
        occurred_at -> Timestamptz,
        delivery_status -> Text,
        delivery_attempts -> Int4,
        next_attempt_at -> Timestamptz,
        delivered_at -> Nullable<Timestamptz>,
        last_error -> Nullable<Text>,
        published_at -> Nullable<Timestamptz>,
    }
}

diesel::table! {
    callback_deliveries (id) {
        id -> Int8,
        event_pk -> Int8,
        attempt -> Int4,
        attempted_at -> Timestamptz,
        url -> Text,
        status_code -> Nullable<Int4>,
        error -> Nullable<Text>,
        latency_ms -> Nullable<Int4>,
        response_head -> Nullable<Text>,
    }
}

diesel::table! {
    dnc_numbers (id) {
        id -> Int8,
        account_id -> Nullable<Int8>,
        phone_e164 -> Text,
        reason -> Text,
        created_at -> Timestamptz,
        source -> Text,
    }
}

diesel::table! {
    dial_jobs (id) {
        id -> Int8,
        call_pk -> Int8,
        attempt -> Int4,
        created_at -> Timestamptz,
        published_at -> Nullable<Timestamptz>,
    }
}

diesel::table! {
    dispatchers (id) {
        id -> Text,
        hostname -> Text,
        started_at -> Timestamptz,
        heartbeat_at -> Timestamptz,
        global_cps -> Nullable<Float8>,
        account_rates -> Jsonb,
        status_at -> Nullable<Timestamptz>,
    }
}

diesel::table! {
    server_status (server_id) {
        server_id -> Int8,
        holder -> Text,
        connected -> Bool,
        draining -> Bool,
        capacity_factor -> Float8,
        live_calls -> Int4,
        reported_at -> Timestamptz,
        calls_per_second -> Float8,
    }
}

diesel::table! {
    server_leases (server_id) {
        server_id -> Int8,
        holder -> Text,
        expires_at -> Timestamptz,
        acquired_at -> Timestamptz,
    }
}

diesel::table! {
    pacing (scope) {
        scope -> Text,
        tat -> Timestamptz,
    }
}

diesel::table! {
    pacing_slots (scope, slot) {
        scope -> Text,
        slot -> Int8,
    }
}

diesel::table! {
    account_call_flow (account_id) {
        account_id -> Int8,
        amd -> Text,
        message_prompt -> Nullable<Text>,
        voicemail_prompt -> Nullable<Text>,
        gather -> Nullable<Jsonb>,
        record -> Bool,
        recording_retention_days -> Int4,
        updated_at -> Timestamptz,
    }
}

diesel::table! {
    prompts (id) {
        id -> Int8,
        prompt_id -> Text,
        account_id -> Int8,
        source -> Text,
        text -> Nullable<Text>,
        language -> Nullable<Text>,
        sample_rate -> Int4,
        duration_ms -> Int4,
        audio -> Bytea,
        created_at -> Timestamptz,
    }
}

diesel::table! {
    media_key (singleton) {
        singleton -> Bool,
        key -> Bytea,
        created_at -> Timestamptz,
    }
}

diesel::table! {
    recordings (id) {
        id -> Int8,
        call_pk -> Int8,
        attempt -> Int4,
        account_id -> Int8,
        object_key -> Text,
        bytes -> Int8,
        duration_seconds -> Int4,
        stored_at -> Timestamptz,
        expires_at -> Timestamptz,
    }
}

diesel::joinable!(api_keys -> accounts (account_id));
diesel::joinable!(recordings -> calls (call_pk));
diesel::joinable!(account_call_flow -> accounts (account_id));
diesel::joinable!(prompts -> accounts (account_id));
diesel::joinable!(batches -> accounts (account_id));
diesel::joinable!(calls -> accounts (account_id));
diesel::joinable!(calls -> batches (batch_pk));
diesel::joinable!(call_attempts -> calls (call_pk));
diesel::joinable!(call_attempts -> asterisk_servers (server_id));
diesel::joinable!(call_events -> calls (call_pk));
diesel::joinable!(callback_deliveries -> call_events (event_pk));
diesel::joinable!(dial_jobs -> calls (call_pk));
diesel::joinable!(server_leases -> asterisk_servers (server_id));

diesel::allow_tables_to_appear_in_same_query!(
    accounts,
    account_call_flow,
    media_key,
    prompts,
    recordings,
    api_keys,
    asterisk_servers,
    batches,
    calls,
    call_attempts,
    call_events,
    callback_deliveries,
    dnc_numbers,
    dial_jobs,
    dispatchers,
    server_leases,
    server_status,
    test_twins,
    pacing,
    pacing_slots,
);

// The operator console (migration 2026-12-10-000001_operator_console).

diesel::table! {
    operators (id) {
        id -> Int8,
        name -> Text,
        token_hash -> Bytea,
        token_prefix -> Text,
        created_at -> Timestamptz,
        revoked_at -> Nullable<Timestamptz>,
        last_sign_in_at -> Nullable<Timestamptz>,
    }
}

diesel::table! {
    operator_sessions (id) {
        id -> Int8,
        operator_id -> Int8,
        session_hash -> Bytea,
        created_at -> Timestamptz,
        expires_at -> Timestamptz,
        ended_at -> Nullable<Timestamptz>,
        client_address -> Nullable<Text>,
    }
}

diesel::table! {
    audit_log (id) {
        id -> Int8,
        at -> Timestamptz,
        operator -> Text,
        action -> Text,
        target -> Text,
        result -> Text,
        detail -> Text,
        client_address -> Nullable<Text>,
    }
}

diesel::joinable!(operator_sessions -> operators (operator_id));
diesel::allow_tables_to_appear_in_same_query!(operators, operator_sessions);
