//! The dispatcher: dial jobs in, calls on Asterisk out, each followed to its outcome.
//!
//! - [`outcome`]: the one table from AMI signals to the contract's events and dispositions.

pub mod outcome;
