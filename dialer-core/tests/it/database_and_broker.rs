//! dialer-core against the real PostgreSQL and RabbitMQ.

use dialer_core::dial_outbox::{self, DialJob, Scope};
use dialer_core::migrations::{self, SchemaError};
use dialer_core::schema;
use dialer_core::test_support::TestEnv;
use dialer_core::{db, topology};
use diesel::QueryDsl;
use diesel::pg::Pg;
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl, SimpleAsyncConnection};
use lapin::options::{BasicAckOptions, BasicGetOptions};

async fn connect(env: &TestEnv) -> AsyncPgConnection {
    AsyncPgConnection::establish(&env.config.database_url)
        .await
        .expect("connect")
}

/// A confirm channel on the test's own topology, declared (the connection is kept alive by
/// the caller).
async fn declared_topology(
    env: &TestEnv,
) -> (lapin::Connection, lapin::Channel, topology::Topology) {
    let amqp = topology::connect(&env.config.amqp_url, "test")
        .await
        .expect("amqp");
    let channel = topology::confirm_channel(&amqp).await.expect("channel");
    let topo = env.topology();
    topo.declare(&channel).await.expect("declare");
    (amqp, channel, topo)
}

/// The calls of the dial jobs waiting in an account's queue (taken off it), in order.
async fn dialed(channel: &lapin::Channel, topo: &topology::Topology, account: i64) -> Vec<i64> {
    let mut got = Vec::new();
    while let Some(msg) = channel
        .basic_get(
            topo.account_dial_queue(account).as_str().into(),
            BasicGetOptions::default(),
        )
        .await
        .expect("get")
    {
        let job: DialJob = serde_json::from_slice(&msg.delivery.data).expect("job json");
        msg.delivery
            .ack(BasicAckOptions::default())
            .await
            .expect("ack");
        got.push(job.call_pk);
    }
    got.sort();
    got
}

#[derive(diesel::QueryableByName)]
struct Count {
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    n: i64,
}

macro_rules! check_table {
    ($conn:expr, $($table:ident),+) => {$({
        let query = schema::$table::table.select(schema::$table::all_columns).limit(0);
        let sql = diesel::debug_query::<Pg, _>(&query).to_string();
        let sql = sql.split(" -- binds").next().unwrap_or(&sql).replace("$1", "0");
        $conn.batch_execute(&sql).await.unwrap_or_else(|e| panic!("{}: {e}", stringify!($table)));
        let in_db: Count = diesel::sql_query(format!(
            "SELECT count(*) AS n FROM information_schema.columns WHERE table_schema = 'public' AND table_name = '{}'",
            stringify!($table)
        ))
        .get_result(&mut $conn)
        .await
        .expect("count columns");
        let in_schema = <schema::$table::table as diesel::Table>::all_columns();
        let n_schema = diesel::debug_query::<Pg, _>(&schema::$table::table.select(in_schema))
            .to_string()
            .matches(", ")
            .count() as i64
            + 1;
        assert_eq!(in_db.n, n_schema, "column count of {}", stringify!($table));
    })+};
}

#[tokio::test]
async fn schema_rs_matches_the_migrated_database() {
    let env = TestEnv::new().await;
    let mut conn = connect(&env).await;
    migrations::check_schema(&mut conn)
        .await
        .expect("schema is current");
    check_table! {
        conn, accounts, api_keys, asterisk_servers, batches, calls, call_attempts, call_events,
        callback_deliveries, dnc_numbers, dial_jobs, dispatchers, server_leases, pacing, pacing_slots,
        server_status, test_twins, account_call_flow, prompts, media_key, recordings, operators,
        operator_sessions, audit_log
    }
}

#[tokio::test]
async fn schema_check_refuses_newer_and_unmigrated_databases() {
    let env = TestEnv::new().await;
    let mut conn = connect(&env).await;
    conn.batch_execute(
        "INSERT INTO __diesel_schema_migrations (version) VALUES ('99990101000000')",
    )
    .await
    .expect("fake a newer migration");
    let err = migrations::check_schema(&mut conn)
        .await
        .expect_err("newer schema refused");
    assert!(matches!(err, SchemaError::Newer { .. }), "{err}");
    assert!(err.to_string().contains("99990101000000"));
    conn.batch_execute("DROP TABLE __diesel_schema_migrations")
        .await
        .expect("drop");
    let err = migrations::check_schema(&mut conn)
        .await
        .expect_err("unmigrated refused");
    assert!(err.to_string().contains("dialerctl migrate"), "{err}");
}

#[tokio::test]
async fn migrate_twice_applies_nothing_the_second_time() {
    let env = TestEnv::new().await;
    let applied = migrations::run_pending(&env.config.database_url)
        .await
        .expect("migrate");
    assert!(applied.is_empty());
}

#[tokio::test]
async fn database_enforces_one_call_per_number_and_batch_ownership() {
    let env = TestEnv::new().await;
    let mut conn = connect(&env).await;
    conn.batch_execute(
        "INSERT INTO accounts (id, accountcode, callback_secret) VALUES (1, 'A', 'whsec_x'), (2, 'B', 'whsec_y');
         INSERT INTO batches (id, account_id, batch_id) VALUES (10, 1, 5), (20, 2, 5);
         INSERT INTO calls (account_id, batch_pk, phone_raw, phone_e164) VALUES (1, 10, '1', '+919876543210');",
    )
    .await
    .expect("seed");
    for (sql, refused) in [
        (
            "INSERT INTO calls (account_id, batch_pk, phone_raw, phone_e164) VALUES (1, 10, '2', '+919876543210')",
            "same number twice in a batch",
        ),
        (
            "INSERT INTO calls (account_id, batch_pk, phone_raw, phone_e164) VALUES (1, 20, '3', '+919876543211')",
            "a call in another account's batch",
        ),
        (
            "INSERT INTO batches (account_id, batch_id) VALUES (1, 5)",
            "same batch_id twice for an account",
        ),
        (
            "INSERT INTO call_events (event_id, account_id, batch_pk, event_type, body) \
             VALUES ('evt_x', 2, 10, 'batch_completed', '{}')",
            "an event of another account's batch",
        ),
        ("UPDATE calls SET status = 'dialling'", "unknown status"),
    ] {
        assert!(conn.batch_execute(sql).await.is_err(), "{refused}");
    }
}

#[tokio::test]
async fn outbox_publishes_each_job_once_with_confirms() {
    let env = TestEnv::new().await;
    let pool = db::build_pool(&env.config, "test").expect("pool");
    let mut conn = pool.get().await.expect("conn");
    conn.batch_execute(
        "INSERT INTO accounts (id, accountcode, callback_secret) VALUES (1, 'A', 'whsec_x');
         INSERT INTO batches (id, account_id, batch_id) VALUES (10, 1, 5);
         INSERT INTO calls (id, account_id, batch_pk, phone_raw, phone_e164) VALUES
           (100, 1, 10, '1', '+919876543210'), (101, 1, 10, '2', '+919876543211');
         INSERT INTO dial_jobs (call_pk, attempt, created_at) VALUES (100, 1, now() - interval '1 hour'), (101, 1, now());",
    )
    .await
    .expect("seed");
    drop(conn);

    let (_amqp, channel, topo) = declared_topology(&env).await;
    topo.declare(&channel)
        .await
        .expect("declaring twice is fine");

    // The sweep takes only old rows; the request path takes its own calls.
    let swept = dial_outbox::publish_pending(&pool, &channel, &topo, Scope::OlderThan(60))
        .await
        .expect("sweep");
    assert_eq!(swept, 1);
    let own = dial_outbox::publish_pending(&pool, &channel, &topo, Scope::Calls(&[100, 101]))
        .await
        .expect("own");
    assert_eq!(own, 1);
    let again = dial_outbox::publish_pending(&pool, &channel, &topo, Scope::OlderThan(0))
        .await
        .expect("again");
    assert_eq!(again, 0);

    assert_eq!(dialed(&channel, &topo, 1).await, vec![100, 101]);
}

/// `finished_at IS NULL` stands for "not final" in the indexes of unfinished calls (keyed so
/// that a call's steps before its end change no indexed column): the database refuses a final
/// status without `finished_at` and an unfinished one with it, for every status of the enum.
#[tokio::test]
async fn a_call_is_finished_exactly_when_its_status_is_final() {
    use dialer_core::domain::CallStatus;

    let env = TestEnv::new().await;
    let mut conn = connect(&env).await;
    conn.batch_execute(
        "INSERT INTO accounts (id, accountcode, callback_secret) VALUES (1, 'A', 'whsec_x');
         INSERT INTO batches (id, account_id, batch_id) VALUES (10, 1, 5);
         INSERT INTO calls (account_id, batch_pk, phone_raw, phone_e164) VALUES (1, 10, '1', '+919876543210');",
    )
    .await
    .expect("seed");
    for s in CallStatus::ALL {
        let finished = conn
            .batch_execute(&format!(
                "UPDATE calls SET status = '{s}', finished_at = now()"
            ))
            .await
            .is_ok();
        let unfinished = conn
            .batch_execute(&format!(
                "UPDATE calls SET status = '{s}', finished_at = NULL"
            ))
            .await
            .is_ok();
        assert_eq!((finished, unfinished), (s.is_final(), !s.is_final()), "{s}");
    }
}

/// The conditions `CallStatus::sql_unfinished` writes are answered by the indexes of
/// unfinished calls (by account, by batch), whose predicate they state: on a table with
/// statistics and vacuumed, most of its calls finished, as a platform that has been running has.
#[tokio::test]
async fn the_unfinished_calls_conditions_use_the_unfinished_calls_indexes() {
    use dialer_core::domain::CallStatus;

    #[derive(diesel::QueryableByName)]
    struct Plan {
        #[diesel(sql_type = diesel::sql_types::Text)]
        #[diesel(column_name = "QUERY PLAN")]
        line: String,
    }
    let env = TestEnv::new().await;
    let mut conn = connect(&env).await;
    conn.batch_execute(
        "INSERT INTO accounts (id, accountcode, callback_secret)
           SELECT a, 'A' || a, 'whsec_x' FROM generate_series(1, 10) a;
         INSERT INTO batches (id, account_id, batch_id) SELECT b, 1 + b % 10, b FROM generate_series(1, 100) b;
         INSERT INTO calls (account_id, batch_pk, phone_raw, phone_e164, status, finished_at)
           SELECT 1 + b % 10, b, n::text, '+9198765' || lpad(n::text, 5, '0'),
                  CASE WHEN n % 10 = 0 THEN 'queued' ELSE 'completed' END,
                  CASE WHEN n % 10 = 0 THEN NULL ELSE now() END
           FROM generate_series(1, 100) b, generate_series(1, 200) n;",
    )
    .await
    .expect("seed");
    // On its own: VACUUM refuses the transaction a multi-statement string makes.
    conn.batch_execute("VACUUM ANALYZE calls")
        .await
        .expect("vacuum");
    let unfinished = CallStatus::sql_unfinished("", |_| true);
    let undialed = CallStatus::sql_unfinished("", CallStatus::is_undialed);
    // The quota counts an account's unfinished calls; the completion probe, the closing sweep,
    // cancel and pause read a batch's, all or the undialed ones.
    for (key, index, conds) in [
        ("account_id", "calls_account_unfinished", vec![&unfinished]),
        (
            "batch_pk",
            "calls_batch_unfinished",
            vec![&unfinished, &undialed],
        ),
    ] {
        for cond in conds {
            let plan: Vec<Plan> = diesel::sql_query(format!(
                "EXPLAIN SELECT count(*) FROM calls WHERE {key} = 1 AND {cond}"
            ))
            .load(&mut conn)
            .await
            .expect("explain");
            let plan: Vec<String> = plan.into_iter().map(|p| p.line).collect();
            assert!(
                plan.iter().any(|l| l.contains(index)),
                "{key}, {cond}: {plan:#?}"
            );
        }
    }
}

/// Generic plans are asked for one transaction only: a pooled connection goes back to the
/// plan cache's own choice (custom plans for a burst's large arrays) once it commits.
#[tokio::test]
async fn generic_plans_last_one_transaction() {
    #[derive(diesel::QueryableByName)]
    struct Mode {
        #[diesel(sql_type = diesel::sql_types::Text)]
        plan_cache_mode: String,
    }
    async fn mode(conn: &mut AsyncPgConnection) -> String {
        let m: Mode = diesel::sql_query("SHOW plan_cache_mode")
            .get_result(conn)
            .await
            .expect("show");
        m.plan_cache_mode
    }
    let env = TestEnv::new().await;
    let mut conn = connect(&env).await;
    let inside = conn
        .transaction::<_, diesel::result::Error, _>(async |conn| {
            dialer_core::prepared::plan_generically(conn).await?;
            Ok(mode(conn).await)
        })
        .await
        .expect("transaction");
    assert_eq!(inside, "force_generic_plan");
    assert_eq!(mode(&mut conn).await, "auto");
}

/// A dispatch publishes its own batches' jobs only, however many unpublished jobs of other
/// batches come before them in the outbox (more than a chunk here: the window moves on).
#[tokio::test]
async fn a_batch_s_jobs_are_published_past_a_full_window_of_another_batch_s() {
    let env = TestEnv::new().await;
    let pool = db::build_pool(&env.config, "test").expect("pool");
    let mut conn = pool.get().await.expect("conn");
    conn.batch_execute(
        "INSERT INTO accounts (id, accountcode, callback_secret) VALUES (1, 'A', 'whsec_x'), (2, 'B', 'whsec_y');
         INSERT INTO batches (id, account_id, batch_id) VALUES (10, 1, 5), (20, 2, 5);
         INSERT INTO calls (id, account_id, batch_pk, phone_raw, phone_e164)
           SELECT g, 2, 20, g::text, '+91987654' || lpad(g::text, 4, '0') FROM generate_series(1, 1200) g;
         INSERT INTO calls (id, account_id, batch_pk, phone_raw, phone_e164) VALUES
           (2001, 1, 10, '1', '+919876543210'), (2002, 1, 10, '2', '+919876543211');
         INSERT INTO dial_jobs (call_pk, attempt) SELECT g, 1 FROM generate_series(1, 600) g;
         INSERT INTO dial_jobs (call_pk, attempt) VALUES (2001, 1);
         INSERT INTO dial_jobs (call_pk, attempt) SELECT g, 1 FROM generate_series(601, 1200) g;
         INSERT INTO dial_jobs (call_pk, attempt) VALUES (2002, 1);",
    )
    .await
    .expect("seed");

    let (_amqp, channel, topo) = declared_topology(&env).await;

    let own = dial_outbox::publish_pending(&pool, &channel, &topo, Scope::Batches(&[10]))
        .await
        .expect("publish");
    assert_eq!(
        own, 2,
        "both jobs of batch 10, one behind 600 others, one behind 1,200"
    );

    #[derive(diesel::QueryableByName)]
    struct Left {
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        batch_pk: i64,
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        n: i64,
    }
    let left: Vec<Left> = diesel::sql_query(
        "SELECT c.batch_pk, count(*) AS n FROM dial_jobs j JOIN calls c ON c.id = j.call_pk \
         WHERE j.published_at IS NULL GROUP BY c.batch_pk",
    )
    .load(&mut conn)
    .await
    .expect("left");
    assert_eq!(left.len(), 1, "only the other batch's jobs are left");
    assert_eq!((left[0].batch_pk, left[0].n), (20, 1200));

    assert_eq!(dialed(&channel, &topo, 1).await, vec![2001, 2002]);
}

#[tokio::test]
async fn sql_built_event_body_matches_the_rust_one() {
    use dialer_core::domain::{CallStatus, EventType};
    use dialer_core::event_body::{CallEventBody, never_dialed_body_sql};

    #[derive(diesel::QueryableByName)]
    struct Row {
        #[diesel(sql_type = diesel::sql_types::Text)]
        body: String,
        #[diesel(sql_type = diesel::sql_types::Uuid)]
        call_id: uuid::Uuid,
    }

    let env = TestEnv::new().await;
    let mut conn = connect(&env).await;
    // custom_data with odd spacing and unicode: must come back byte for byte
    let custom = r#"{"customer_id": "CUST001",  "n":[1, 2],"name":"Zoë \"Q\""}"#;
    conn.batch_execute(&format!(
        "INSERT INTO accounts (id, accountcode, callback_secret) VALUES (1, 'ACME', 'whsec_x');
         INSERT INTO batches (id, account_id, batch_id) VALUES (10, 1, 12345);
         INSERT INTO calls (account_id, batch_pk, phone_raw, phone_e164, custom_data, attempts, event_seq)
           VALUES (1, 10, '98765 43210', '+919876543210', '{}', 0, 1);",
        custom.replace('\'', "''")
    ))
    .await
    .expect("seed");
    let expr = never_dialed_body_sql(EventType::CallCancelled, None, "$1", "$2");
    let row: Row = diesel::sql_query(format!(
        "SELECT {expr} AS body, call_id FROM (SELECT 'evt_0123' AS event_id, * FROM calls) c"
    ))
    .bind::<diesel::sql_types::Text, _>("ACME")
    .bind::<diesel::sql_types::BigInt, _>(12345_i64)
    .get_result(&mut conn)
    .await
    .expect("build body");
    let parsed: CallEventBody = serde_json::from_str(&row.body).expect("body parses");
    assert_eq!(parsed.call_status, CallStatus::Cancelled);
    assert_eq!(parsed.custom_data.as_ref().map(|c| c.get()), Some(custom));
    let rust = CallEventBody {
        event_id: "evt_0123".into(),
        event_type: EventType::CallCancelled,
        accountcode: "ACME".into(),
        batch_id: 12345,
        call_id: row.call_id,
        phone_number: "98765 43210".into(),
        phone_number_e164: "+919876543210".into(),
        call_status: CallStatus::Cancelled,
        disposition: None,
        duration: 0,
        start_time: None,
        answer_time: None,
        end_time: None,
        recording_url: None,
        custom_data: Some(serde_json::value::RawValue::from_string(custom.into()).expect("raw")),
        server_code: None,
        error_message: None,
        // Never dialed: the attempt that will not happen is the first.
        attempt: 1,
        will_retry: false,
        sequence: 1,
        occurred_at: parsed.occurred_at.clone(),
        answered_by: None,
        amd_cause: None,
        digits: None,
        opted_out: None,
        recording_duration: None,
    };
    assert_eq!(serde_json::to_string(&rust).expect("serialize"), row.body);
}

#[derive(diesel::QueryableByName)]
struct Sum {
    #[diesel(sql_type = diesel::sql_types::Integer)]
    n: i32,
}

/// `prepared` text is parsed once per connection and kept; `sql_query` text is not (it was
/// re-parsed and re-planned at every execution, most of PostgreSQL's CPU per call at paced rates).
#[tokio::test]
async fn prepared_statements_are_kept_by_the_connection_and_sql_query_ones_are_not() {
    use dialer_core::prepared::PrepareOnce;
    use diesel::sql_types::Integer;
    const KEPT: &str = "SELECT $1::int + 1 AS n /* prepared test */";
    const NOT_KEPT: &str = "SELECT $1::int + 2 AS n /* sql_query test */";
    let env = TestEnv::new().await;
    let mut conn = connect(&env).await;
    for i in 0..3 {
        let kept: Sum = diesel::sql_query(KEPT)
            .bind::<Integer, _>(i)
            .prepared()
            .get_result(&mut conn)
            .await
            .expect("prepared runs");
        assert_eq!(kept.n, i + 1);
        let other: Sum = diesel::sql_query(NOT_KEPT)
            .bind::<Integer, _>(i)
            .get_result(&mut conn)
            .await
            .expect("sql_query runs");
        assert_eq!(other.n, i + 2);
    }
    let held = |text: &'static str| {
        diesel::sql_query("SELECT count(*) AS n FROM pg_prepared_statements WHERE statement = $1")
            .bind::<diesel::sql_types::Text, _>(text)
    };
    let kept: Count = held(KEPT).get_result(&mut conn).await.expect("count");
    let not_kept: Count = held(NOT_KEPT).get_result(&mut conn).await.expect("count");
    assert_eq!((kept.n, not_kept.n), (1, 0));
}

/// The connection string that follows a PostgreSQL failover (docs/operations.md, several
/// hosts): several hosts, the first that takes connections and writes is used. Here the first is
/// a port nobody listens on.
#[tokio::test]
async fn a_database_url_of_several_hosts_uses_the_one_that_answers() {
    let mut env = TestEnv::new().await;
    let url = env.config.database_url.clone();
    let at = url.find('@').expect("user in DATABASE_URL") + 1;
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port();
    let several = format!("{}127.0.0.1:{closed},{}", &url[..at], &url[at..]);
    let several = match several.contains('?') {
        true => format!("{several}&target_session_attrs=read-write"),
        false => format!("{several}?target_session_attrs=read-write"),
    };
    env.config.database_url = several;
    let pool = db::build_pool(&env.config, "several-hosts").expect("pool");
    let mut conn = pool
        .get()
        .await
        .expect("a connection through the second host");
    let one: Count = diesel::sql_query("SELECT 1::bigint AS n")
        .get_result(&mut conn)
        .await
        .expect("a statement");
    assert_eq!(one.n, 1);
}
