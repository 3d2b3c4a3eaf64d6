//! The dispatcher: dial jobs in, calls on Asterisk out, each followed to its outcome.
//!
//! - [`outcome`]: the one table from AMI signals to the contract's events and dispositions.
//! - [`calling_hours`]: when a call may go, in the callee's or the account's time zone.
//! - [`pacer`]: even pacing for limits one process owns (a leased server's calls per second).

pub mod calling_hours;
mod country_timezones;
pub mod outcome;
pub mod pacer;
