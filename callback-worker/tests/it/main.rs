//! The callback worker's integration tests, one binary: the engine against real PostgreSQL and
//! HTTP(S) receivers on loopback, and the real binary killed and restarted.

mod helpers;
mod receiver;

mod crash;
mod delivery;
mod queue;
mod tls;
