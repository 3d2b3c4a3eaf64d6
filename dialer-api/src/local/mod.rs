//! The platform run whole on one machine, from the real binaries: `dialerctl demo`,
//! `dialerctl bench` and the end-to-end test share it.

pub mod api_client;
pub mod bench;
pub mod demo;
pub mod platform;
pub mod receiver;
pub mod report;
pub mod seed;
