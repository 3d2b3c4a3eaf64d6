//! The state of a batch.

crate::text_enum! {
    pub enum BatchStatus("batch status") {
        /// Nothing dispatched yet.
        Pending = "pending",
        Dispatching = "dispatching",
        Paused = "paused",
        /// Every call has its final outcome.
        Completed = "completed",
        Cancelled = "cancelled",
    }
}

impl BatchStatus {
    /// New calls may still be added to a batch in this state.
    pub const fn accepts_calls(self) -> bool {
        !matches!(self, BatchStatus::Cancelled)
    }
}
