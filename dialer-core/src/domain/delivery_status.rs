//! Where the delivery of one callback event stands (`call_events.delivery_status`).

crate::text_enum! {
    pub enum DeliveryStatus("delivery status") {
        /// Not delivered yet: due at `next_attempt_at` (or claimed by a worker until then).
        Pending = "pending",
        Delivered = "delivered",
        /// Every try of the schedule failed.
        Failed = "failed",
        /// Never to be sent (no callback URL, a batch event the account does not subscribe to).
        Skipped = "skipped",
    }
}
