//! The dispatcher: dial jobs in, calls on Asterisk out, each followed to its outcome.
//!
//! - [`outcome`]: the one table from AMI signals to the contract's events and dispositions.
//! - [`state`]: every write of a call's, attempt's or batch's state, with its event, in one
//!   transaction (the core's lifecycle for what is not AMI-driven).
//! - [`recovery`]: restart release, orphan adoption and due calls, at start and in the sweep.
//! - [`claim`]: claims before side effects: which jobs are dialed, wait, end or are dropped.
//! - [`intake`]: each account's dial queue consumed, jobs to the scheduler.
//! - [`scheduler`]: fair, paced Originates across accounts and servers; [`placement`]: an
//!   Originate that never reached a running PBX puts its call back, with backoff.
//! - [`flow`]: what an Originate carries for its batch's flow after the answer.
//! - [`send_gate`]: each claimed attempt confirmed in PostgreSQL just before its Originate;
//!   [`late`]: a call held up past its moment is spaced out or put back, never sent in a clump.
//! - [`registry`]: the attempts being followed and the routing of AMI events to them.
//! - [`server`]: one leased Asterisk server: AMI connection, channels, reconcile;
//!   [`health`]: backing off an overloaded PBX.
//! - [`leases`]: server leases and heartbeats shared by every dispatcher.
//! - [`pacing`]: calls-per-second slots shared by every dispatcher; [`pacer`]: one process's.
//! - [`runtime`]: the running dispatcher and its tasks; `transition_writer`: the task that
//!   writes every transition, never dropping one.

pub mod claim;
pub mod config;
pub mod flow;
pub mod health;
pub mod intake;
pub mod late;
pub mod leases;
pub mod outcome;
pub mod pacer;
pub mod pacing;
pub mod placement;
pub mod recovery;
pub mod registry;
pub mod runtime;
pub mod scheduler;
pub mod send_gate;
pub mod server;
pub mod server_status;
pub mod state;
mod transition_writer;

pub use config::DispatcherConfig;
pub use runtime::Dispatcher;
