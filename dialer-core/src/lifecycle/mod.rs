//! Every change of a call's or a batch's state that is not the dispatcher's AMI-driven
//! transitions: scheduling, pause, resume and cancel, calls ended before they were dialed (one
//! by one at a claim, or set-based when their batch expired or was cancelled), and the batch's completion. Each
//! function writes inside the caller's transaction (the caller locks the batch and reads it
//! back), so a state and its callback event are committed together, in as few statements as the
//! change needs.

mod closed_batches;
mod completion;
pub mod control;
pub mod erasure;
mod recording;
pub mod schedule;
mod undialed;

pub use closed_batches::{ClosedBatchCalls, end_calls_of_closed_batches};
pub use completion::{
    BatchRef, LifecycleError, batch_completed_body, complete_batch_if_done, state_counts,
    write_batch_completed,
};
pub use recording::{RecordingReady, recording_ready_if_due};
pub use undialed::{EndedUndialed, end_undialed};
