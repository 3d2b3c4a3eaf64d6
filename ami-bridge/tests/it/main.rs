//! ami-bridge's tests, one binary: the codec and typed events against every recorded Asterisk
//! session (`transcripts`, `codec_properties`), and the client against a server replaying the
//! recordings (`client_replay`) or one that stays silent (`client_timeouts`).

mod client_replay;
mod client_timeouts;
mod codec_properties;
mod helpers;
mod transcripts;
