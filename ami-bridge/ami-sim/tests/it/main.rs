//! ami-sim's tests, one binary: each recording replayed against the simulator (`transcripts`),
//! actions, plan, capacity, faults, counting and the control port (`behaviour`), our own AMI
//! client against the simulator (`client`), event volume and `eventfilter` (`volume`), ring and
//! talk times and the channel-setup capacity (`load`).

mod behaviour;
mod client;
mod helpers;
mod load;
mod transcripts;
mod volume;
