//! Where the delivery of one callback event stands (`call_events.delivery_status`).

crate::text_enum! {
    /// `pending`: not delivered yet, due at `next_attempt_at` (or claimed by a worker until
    /// then); `failed`: every try of the schedule failed; `skipped`: never to be sent (no
    /// callback URL, a batch event the account does not subscribe to).
    pub enum DeliveryStatus("delivery status") {
        Pending = "pending", Delivered = "delivered", Failed = "failed", Skipped = "skipped",
    }
}
