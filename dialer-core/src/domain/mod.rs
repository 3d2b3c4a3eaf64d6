//! Domain vocabulary of the contract: each enum maps to and from its text in one place.

mod answer_kinds;
mod attempt_state;
mod batch_status;
mod call_status;
mod delivery_status;
mod disposition;
mod dnc_source;
mod event_type;
mod server_state;

pub use answer_kinds::{AmdPolicy, AnsweredBy};
pub use attempt_state::AttemptState;
pub use batch_status::BatchStatus;
pub use call_status::{ANSWER_COUNT_KEYS, Bucket, CallStatus, StateCounts, Totals};
pub use delivery_status::DeliveryStatus;
pub use disposition::Disposition;
pub use dnc_source::DncSource;
pub use event_type::EventType;
pub use server_state::{ServerReport, ServerState};
