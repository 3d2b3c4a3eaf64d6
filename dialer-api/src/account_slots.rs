//! How much of the API one account may hold at once: a few places per account, taken before
//! any pooled connection is, so a flood from one account waits (holding nothing) or is answered
//! `429 rate_limited`, and the pool stays open to every other account.
//!
//! Two kinds of places: every authenticated request takes one of the account's request places
//! (its share of the pool); a submission first takes one of the fewer submission places, since
//! submissions of one account take its ingestion lock in turn and more of them at once would
//! only hold connections while waiting on it. Per process, like the rate limit.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::api_error::ApiError;

/// What a route's requests do, as far as the places go (set per route with `app_data`; a route
/// without it is `Request`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WorkKind {
    Request,
    Submission,
}

struct Places {
    requests: Arc<Semaphore>,
    submissions: Arc<Semaphore>,
}

pub struct AccountSlots {
    requests: usize,
    submissions: usize,
    wait: Duration,
    accounts: Mutex<HashMap<i64, Arc<Places>>>,
}

/// Held for the whole request; dropping it frees the places.
pub struct Slot {
    _request: OwnedSemaphorePermit,
    _submission: Option<OwnedSemaphorePermit>,
}

impl AccountSlots {
    /// `requests` places per account, `submissions` of them for submissions; a request waits up
    /// to `wait` for its place.
    pub fn new(requests: usize, submissions: usize, wait: Duration) -> AccountSlots {
        AccountSlots {
            requests: requests.max(1),
            submissions: submissions.max(1),
            wait,
            accounts: Mutex::default(),
        }
    }

    fn places(&self, account_id: i64) -> Arc<Places> {
        let mut map = self
            .accounts
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        map.entry(account_id)
            .or_insert_with(|| {
                Arc::new(Places {
                    requests: Arc::new(Semaphore::new(self.requests)),
                    submissions: Arc::new(Semaphore::new(self.submissions)),
                })
            })
            .clone()
    }

    /// The account's places for one request of this kind, waiting for them up to the configured
    /// time; past it, `429 rate_limited` with `Retry-After`.
    pub async fn take(&self, account_id: i64, kind: WorkKind) -> Result<Slot, ApiError> {
        let places = self.places(account_id);
        let deadline = tokio::time::Instant::now() + self.wait;
        let submission = match kind {
            WorkKind::Request => None,
            WorkKind::Submission => Some(
                acquire(&places.submissions, deadline)
                    .await
                    .ok_or_else(|| busy("submissions", self.submissions))?,
            ),
        };
        let request = acquire(&places.requests, deadline)
            .await
            .ok_or_else(|| busy("requests", self.requests))?;
        Ok(Slot {
            _request: request,
            _submission: submission,
        })
    }
}

async fn acquire(
    semaphore: &Arc<Semaphore>,
    deadline: tokio::time::Instant,
) -> Option<OwnedSemaphorePermit> {
    tokio::time::timeout_at(deadline, semaphore.clone().acquire_owned())
        .await
        .ok()
        .and_then(Result::ok)
}

fn busy(what: &str, limit: usize) -> ApiError {
    ApiError::rate_limited(
        format!("more than {limit} {what} of this account at once; retry later"),
        std::time::Duration::from_secs(1),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn places_per_account_and_kind() {
        let slots = AccountSlots::new(2, 1, Duration::from_millis(20));
        let first = slots.take(1, WorkKind::Submission).await;
        assert!(first.is_ok());
        let err = slots
            .take(1, WorkKind::Submission)
            .await
            .err()
            .map(|e| (e.code, e.retry_after));
        assert_eq!(
            err,
            Some(("rate_limited", Some(1))),
            "one submission at once"
        );
        let read = slots.take(1, WorkKind::Request).await;
        assert!(read.is_ok(), "the account's other place is still free");
        assert!(slots.take(1, WorkKind::Request).await.is_err(), "both held");
        assert!(
            slots.take(2, WorkKind::Submission).await.is_ok(),
            "another account"
        );
        drop(first);
        assert!(
            slots.take(1, WorkKind::Request).await.is_ok(),
            "freed on drop"
        );
    }

    #[tokio::test]
    async fn waits_for_a_place_within_the_time() {
        let slots = Arc::new(AccountSlots::new(1, 1, Duration::from_secs(5)));
        let held = slots.take(1, WorkKind::Request).await;
        let waiter = tokio::spawn({
            let slots = slots.clone();
            async move { slots.take(1, WorkKind::Request).await.is_ok() }
        });
        tokio::time::sleep(Duration::from_millis(20)).await;
        drop(held);
        assert!(waiter.await.unwrap_or(false));
    }
}
