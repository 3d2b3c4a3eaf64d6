//! The state of a batch.

crate::text_enum! {
    /// `pending`: nothing dispatched yet; `completed`: every call has its final outcome.
    pub enum BatchStatus("batch status") {
        Pending = "pending", Dispatching = "dispatching", Paused = "paused",
        Completed = "completed", Cancelled = "cancelled",
    }
}

impl BatchStatus {
    /// New calls may still be added to a batch in this state.
    pub const fn accepts_calls(self) -> bool {
        !matches!(self, BatchStatus::Cancelled)
    }
}
