//! The dispatcher's integration tests, one binary: each module a former test file, `helpers`
//! the world they share (a fresh database and queue prefix, simulated Asterisk servers).

mod behaviours;
mod cancel;
mod crash_and_rate;
mod expiry;
mod fairness;
mod global_and_resume;
mod held_transitions;
mod helpers;
mod late;
mod limits_and_batches;
mod multi_dispatcher;
mod not_placed;
mod outcome_transcripts;
mod outcomes;
mod overload;
mod priority;
mod process_faults;
mod send_gate;
mod server_faults;
mod taken_back;
mod test_mode;
