//! What the state module is told (a [`Transition`] the AMI or a guard reported), what it
//! answers ([`Applied`]), and how it fails.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use dialer_core::domain::{AnsweredBy, Disposition, EventType};
use dialer_core::lifecycle::{EndedUndialed, LifecycleError};

use crate::outcome::Outcome;

/// A state write fails as the core's lifecycle writes do: in the database, or on an event body
/// that would not serialize.
pub type StateError = LifecycleError;

/// A change the AMI (or a guard) reported for an attempt.
#[derive(Debug, Clone, PartialEq)]
pub enum Transition {
    Started {
        attempt: Uuid,
        at: DateTime<Utc>,
    },
    Answered {
        attempt: Uuid,
        at: DateTime<Utc>,
    },
    /// The flow's answering-machine detection decided.
    Amd {
        attempt: Uuid,
        answered_by: AnsweredBy,
        cause: Option<String>,
        at: DateTime<Utc>,
    },
    /// The flow's gathering ended with these keys (finish key left out).
    Input {
        attempt: Uuid,
        digits: String,
        at: DateTime<Utc>,
    },
    Ended {
        attempt: Uuid,
        outcome: Outcome,
        /// The platform hung up an answered call at its maximum length.
        cut_by_platform: bool,
        at: DateTime<Utc>,
    },
    /// The Originate never reached a running PBX, or the PBX refused it for its own state
    /// (connection down, shutting down): nobody was dialed. The attempt is undone and the call
    /// waits for `due` to be dialed again (no event: see `state::not_placed`).
    NotPlaced {
        attempt: Uuid,
        due: DateTime<Utc>,
    },
}

impl Transition {
    pub fn attempt(&self) -> Uuid {
        match self {
            Transition::Started { attempt, .. }
            | Transition::Answered { attempt, .. }
            | Transition::Amd { attempt, .. }
            | Transition::Input { attempt, .. }
            | Transition::Ended { attempt, .. }
            | Transition::NotPlaced { attempt, .. } => *attempt,
        }
    }
}

/// What a transition did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Applied {
    pub batch_pk: i64,
    pub event_type: Option<EventType>,
    /// The batch has no call left to finish (its `batch_completed` is written).
    pub batch_completed: bool,
    /// An event it wrote entered the delivery queue: the callback worker is to be prompted.
    pub queued: bool,
    /// The attempt it ended, with this disposition.
    pub ended: Option<Disposition>,
}

impl From<EndedUndialed> for Applied {
    fn from(e: EndedUndialed) -> Applied {
        Applied {
            batch_pk: e.batch_pk,
            event_type: Some(e.event_type),
            batch_completed: e.batch_completed,
            // Written by another statement, which does not say: prompt anyway (a rare path).
            queued: true,
            // Never dialed: no attempt ended.
            ended: None,
        }
    }
}
