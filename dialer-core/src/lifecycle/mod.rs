//! Changes of a call's or a batch's state other than the dispatcher's AMI-driven transitions:
//! calls ended before they were dialed and the batch's completion. Each runs inside the caller's
//! transaction, so the state and its callback event are committed together.

mod completion;
mod undialed;

pub use completion::{
    BatchRef, LifecycleError, batch_completed_body, complete_batch_if_done, write_batch_completed,
};
pub use undialed::{EndedUndialed, end_undialed};
