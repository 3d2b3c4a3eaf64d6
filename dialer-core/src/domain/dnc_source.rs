//! Who put a number on a do-not-call list (`dnc_numbers.source`).

crate::text_enum! {
    /// `operator`: `dialerctl dnc` (every global entry, and account entries an operator made);
    /// `client`: the account itself, through the API; `opt_out`: the callee pressed the batch's
    /// opt-out digit. A client may remove its own and operators' account entries, never an
    /// opt-out: the person asked not to be called.
    pub enum DncSource("do-not-call source") {
        Operator = "operator", Client = "client", OptOut = "opt_out",
    }
}

impl DncSource {
    /// Whether the account may remove the entry through the API.
    pub fn client_may_remove(self) -> bool {
        self != DncSource::OptOut
    }
}
