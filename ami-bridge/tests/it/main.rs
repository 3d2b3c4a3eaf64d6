//! ami-bridge's tests, one binary: the codec and typed events against every recorded Asterisk
//! session (`transcripts`, `codec_properties`), and the client against a server replaying the
//! recordings (`client_replay`) one that stays silent (`client_timeouts`), or one that goes on talking while the client's
//! process is stopped (`client_stall`); the moments it stamps at the socket (`client_timing`).

mod client_replay;
mod client_stall;
mod client_timeouts;
mod client_timing;
mod codec_properties;
mod helpers;
mod transcripts;
