//! A transition the database refuses for its data is held, not dropped (issue 15). A trigger
//! makes PostgreSQL refuse, as a constraint would (`check_violation`), to mark one call's
//! attempt answered: the writer's group fails, goes one by one, and that transition (then the
//! attempt's hang-up, behind it) is held while the other call completes. Once the database
//! takes it again, the held transitions are written in order at their next try (every 30 s)
//! and the call ends with every event in sequence.

use std::time::{Duration, Instant};

use ami_sim::{OutcomeKind, Rule};

use crate::helpers::World;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_transition_refused_for_its_data_is_held_then_written_once_accepted() {
    let rules = vec![Rule::timed("+1555*", OutcomeKind::Answered, 100, 800)];
    let world = World::new(1, rules, 50, 100).await;
    world
        .exec(
            "CREATE FUNCTION refuse_answer() RETURNS trigger LANGUAGE plpgsql AS $$ \
             BEGIN \
               IF NEW.state = 'answered' AND EXISTS \
                  (SELECT 1 FROM calls c WHERE c.id = NEW.call_pk AND c.phone_raw = '+15550000001') \
               THEN RAISE EXCEPTION 'refused for the test' USING ERRCODE = 'check_violation'; \
               END IF; \
               RETURN NEW; \
             END $$",
        )
        .await;
    world
        .exec(
            "CREATE TRIGGER refuse_answer BEFORE UPDATE ON call_attempts \
             FOR EACH ROW EXECUTE FUNCTION refuse_answer()",
        )
        .await;
    let account = world.account("ACME", 50, 20, "").await;
    let numbers = ["+15550000001".to_owned(), "+15550000002".to_owned()];
    let (batch, _dispatcher) = world.batch_and_dispatcher(account, 7, &numbers).await;

    // The other call completes; the refused one stays where the database left it.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let calls = world.calls(batch).await;
        if calls[1].status == "completed" {
            assert_eq!(calls[0].status, "started", "{:?}", calls[0].status);
            break;
        }
        assert!(Instant::now() < deadline, "the other call did not complete");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // Well past its 0.8 s of talk: its answer and its end are held, not dropped.
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(world.calls(batch).await[0].status, "started");

    world
        .exec("DROP TRIGGER refuse_answer ON call_attempts")
        .await;
    let calls = world.wait_final(batch, Duration::from_secs(60)).await;
    assert_eq!(calls[0].status, "completed");
    assert_eq!(calls[0].disposition.as_deref(), Some("answered"));
    let types = world.event_types(calls[0].id).await;
    assert_eq!(types, ["call_started", "call_answered", "call_completed"]);
    let rows = world.events(calls[0].id).await;
    let sequences: Vec<Option<i32>> = rows.iter().map(|e| e.sequence).collect();
    assert_eq!(sequences, [Some(1), Some(2), Some(3)]);
}
