//! Every write of a call's, an attempt's or a batch's state the dispatcher makes:
//!
//! - `writer`: the AMI-driven transitions (`call_started`, `call_answered`, the attempt's
//!   end), with their events, in one transaction; `writes` holds its statements, `rows`
//!   what it reads under lock.
//! - `claiming`: the claim's writes (attempt rows, parked calls; calls ended undialed are the
//!   core's `end_undialed`, re-exported), and the confirmation of an attempt before its send.
//! - `due`: calls whose retry or calling-hours wait is over.
//! - `handover`: which dispatcher follows an attempt (restart, orphan adoption).
//! - `not_placed`: an attempt whose Originate never reached a running PBX is undone and its
//!   call waits to be dialed again.
//!
//! Changes that are not the dispatcher's own (an undialed call's end, a batch's completion) are
//! the core's [`dialer_core::lifecycle`], called from here.

mod claiming;
mod due;
mod handover;
mod not_placed;
mod rows;
mod transition;
mod writer;
mod writes;

pub use claiming::{Claimed, confirm_sends, park_until, start_attempts};
/// The claim ends a call that was never dialed (`call_skipped`, `call_expired`,
/// `call_cancelled`) inside its transaction through the core; `None` when the call is gone.
pub use dialer_core::lifecycle::end_undialed;
pub use due::release_due_calls;
pub use handover::{adopt_attempt, adopt_unsent, release_attempts_of};
pub use transition::{Applied, StateError, Transition};
pub use writer::{apply, apply_all};
