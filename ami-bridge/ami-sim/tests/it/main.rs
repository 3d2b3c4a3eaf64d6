//! ami-sim's tests, one binary: each recording replayed against the simulator (`transcripts`),
//! actions, plan, capacity, faults, counting and the control port (`behaviour`), and our own AMI
//! client against the simulator (`client`).

mod behaviour;
mod client;
mod helpers;
mod transcripts;
