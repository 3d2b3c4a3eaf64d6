//! Domain vocabulary of the contract: each enum maps to and from its text in one place.

mod attempt_state;
mod batch_status;
mod call_status;
mod delivery_status;
mod disposition;
mod event_type;

pub use attempt_state::AttemptState;
pub use batch_status::BatchStatus;
pub use call_status::{Bucket, CallStatus, StateCounts, Totals};
pub use delivery_status::DeliveryStatus;
pub use disposition::Disposition;
pub use event_type::EventType;
