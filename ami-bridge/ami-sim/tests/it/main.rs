//! ami-sim's tests, one binary: each recording replayed against the simulator (`transcripts`),
//! actions, plan, capacity, faults, counting and the control port (`behaviour`), our own AMI
//! client against the simulator (`client`), event volume and `eventfilter` (`volume`), ring and
//! talk times and the channel-setup capacity (`load`), the flow after the answer (`flow`, with
//! a small HTTP server for its prompts and recordings in `http_server`).

mod behaviour;
mod client;
mod flow;
mod helpers;
mod http_server;
mod load;
mod transcripts;
mod volume;
