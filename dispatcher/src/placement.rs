//! Whether an Originate that failed placed a call at all, and when a call not placed is tried
//! again.
//!
//! A call is *not placed* when its Originate never reached a running Asterisk (the connection
//! was down, the client closed) or the PBX refused it for its own state (`Asterisk is shutting
//! down`, its own memory failure): nobody was dialed, so the call goes back to be dialed, on this
//! server when it returns or on another, with a growing, jittered, capped delay, until it is
//! placed or its batch expires. Any other refusal is about the request itself (a channel or a
//! context that does not exist, a permission) and ends the attempt `failed`, as does a running
//! PBX's `Reason 0` without a channel (peer down, unknown technology: the callee's route).

use std::time::Duration;

use ami_bridge::AmiError;

/// The first delay before a call not placed is tried again, and the longest.
const FIRST_DELAY: Duration = Duration::from_secs(2);
const MAX_DELAY: Duration = Duration::from_secs(60);

/// What the PBX answers to every action from `core stop` on (Asterisk 20, main/manager.c).
const SHUTTING_DOWN: &str = "Asterisk is shutting down";
/// Asterisk's own allocation failure in its Originate handler: its state, not the request's.
const INTERNAL_ERROR: &str = "Internal Error";

/// Why the call was not placed, if the error says it was not.
pub fn not_placed(err: &AmiError) -> Option<String> {
    match err {
        AmiError::NotConnected | AmiError::Closed => {
            Some("the PBX connection was down; the call was not placed".into())
        }
        AmiError::ActionFailed { message, .. } if refused_for_its_own_state(message) => Some(
            format!("Originate refused: {message}; the call was not placed"),
        ),
        _ => None,
    }
}

/// The PBX is shutting down: it takes no new call until it is back.
pub fn is_shutting_down(err: &AmiError) -> bool {
    matches!(err, AmiError::ActionFailed { message, .. } if message.contains(SHUTTING_DOWN))
}

fn refused_for_its_own_state(message: &str) -> bool {
    message.contains(SHUTTING_DOWN) || message.starts_with(INTERNAL_ERROR)
}

/// The delay before the `tries`-th try after a call was not placed (1 = the first): doubling
/// from [`FIRST_DELAY`] up to [`MAX_DELAY`], then scaled by `jitter` (0.8 to 1.2 expected, so
/// calls put back together do not all come back in the same instant).
pub fn retry_delay(tries: u32, jitter: f64) -> Duration {
    let doublings = tries.saturating_sub(1).min(16);
    let base = FIRST_DELAY.saturating_mul(1 << doublings).min(MAX_DELAY);
    base.mul_f64(jitter.clamp(0.5, 1.5))
}

/// A jitter factor in `[0.8, 1.2)` from a random UUID (no other source of randomness is needed
/// here).
pub fn jitter() -> f64 {
    let r = (uuid::Uuid::new_v4().as_u128() & 0xffff) as f64 / 65536.0;
    0.8 + 0.4 * r
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_pbx_state_and_a_down_connection_mean_not_placed() {
        let refused = |m: &str| AmiError::ActionFailed {
            action: "Originate".into(),
            message: m.into(),
        };
        assert!(not_placed(&AmiError::NotConnected).is_some());
        assert!(not_placed(&AmiError::Closed).is_some());
        assert!(not_placed(&refused("Asterisk is shutting down")).is_some());
        assert!(not_placed(&refused("Internal Error. Memory allocation failure.")).is_some());
        assert!(is_shutting_down(&refused("Asterisk is shutting down")));
        // The request's own faults, and an Originate that may have reached the PBX.
        for m in [
            "Invalid channel",
            "Extension does not exist.",
            "Permission denied",
        ] {
            assert_eq!(not_placed(&refused(m)), None, "{m}");
        }
        assert_eq!(not_placed(&AmiError::Disconnected), None);
        let timeout = AmiError::Timeout {
            action: "Originate".into(),
            timeout: Duration::from_secs(10),
        };
        assert_eq!(not_placed(&timeout), None);
    }

    #[test]
    fn delays_double_up_to_the_cap_and_are_jittered() {
        assert_eq!(retry_delay(1, 1.0), FIRST_DELAY);
        assert_eq!(retry_delay(2, 1.0), FIRST_DELAY * 2);
        assert_eq!(retry_delay(3, 1.0), FIRST_DELAY * 4);
        assert_eq!(retry_delay(40, 1.0), MAX_DELAY);
        assert_eq!(retry_delay(0, 1.0), FIRST_DELAY);
        assert_eq!(retry_delay(1, 0.8), FIRST_DELAY.mul_f64(0.8));
        for _ in 0..100 {
            let j = jitter();
            assert!((0.8..1.2).contains(&j), "{j}");
        }
    }
}
