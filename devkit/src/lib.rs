//! The developer kit: the platform run whole on one machine from the real binaries. The
//! `dialer-devkit demo` and `dialer-devkit bench` commands (also reached as `dialerctl demo` /
//! `dialerctl bench`) and the end-to-end test share it. It is the only crate that depends on
//! service crates; nothing in production depends on it.

pub mod api_client;
pub mod bench;
pub mod demo;
pub mod dispatcher_metrics;
pub mod history;
pub mod memory;
pub mod paced;
pub mod partition;
pub mod pg_cpu;
pub mod pg_instance;
pub mod pg_transactions;
pub mod platform;
pub mod rabbit_cluster;
pub mod rabbit_node;
pub mod rate_windows;
pub mod receiver;
pub mod report;
pub mod seed;
pub mod sims;
