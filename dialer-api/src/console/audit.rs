//! The console's entries in the audit log. An entry that cannot be written is logged instead:
//! the action it records has happened (or been refused) already, and the operator must still
//! hear how it went.

use crate::ops::audit_log::{self, Entry, Outcome};
use crate::state::AppState;

pub async fn write(
    state: &AppState,
    operator: &str,
    action: &str,
    target: &str,
    outcome: Outcome,
    detail: &str,
    client_address: Option<String>,
) {
    let entry = Entry {
        operator,
        action,
        target,
        outcome,
        detail,
        client_address,
    };
    if let Err(e) = audit_log::record(&state.pool, &entry).await {
        tracing::error!(
            error = %e,
            operator,
            action,
            target,
            result = outcome.as_str(),
            "audit entry not written"
        );
    }
}
