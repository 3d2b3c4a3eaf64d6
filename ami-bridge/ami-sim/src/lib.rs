//! `ami-sim`: a PBX simulator that speaks AMI like Asterisk 20.20.1, byte for byte as recorded in
//! `shared/ami-transcripts/`, for every test of the dialer platform.
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use ami_sim::{SimConfig, Simulator};
//! let sim = Simulator::start(SimConfig { listen: "127.0.0.1:0".parse()?, ..Default::default() }).await?;
//! println!("AMI on {}", sim.addr());
//! sim.drop_connections();
//! let stats = sim.stats();
//! assert_eq!(stats.originates_total, 0);
//! sim.shutdown().await;
//! # Ok(()) }
//! ```
//!
//! Modules: [`config`] (TOML), [`outcome`] (number -> outcome), [`callee`] (who answers, what
//! they press), [`dial_string`], [`stats`]
//! (with [`latency_histogram`]), [`channel_events`] (wire form), [`control`] (control port);
//! inside: `pbx` (channels, event stream), `event_filter` (manager.conf `eventfilter`),
//! `originate_action` (the Originate action and its OriginateResponse), `originate` (starting a
//! call), `channel_setup` (capacity: when an Originate gets its channel), `call` (event
//! sequences; `call::flow` the flow after the answer, with `flow_vars` (its Originate
//! variables), `gather` (what Read makes of keys), `prompt_fetch`, `recording_upload` and
//! `wav`), `session` (AMI connections, their actions and security events), `action_headers`,
//! `faults`, `handle` (the [`SimHandle`]), `simulator` (listeners), `cli_output`, `wall_clock`.

mod action_headers;
mod call;
pub mod callee;
pub mod channel_events;
mod channel_setup;
mod cli_output;
pub mod config;
pub mod control;
pub mod dial_string;
mod event_filter;
mod faults;
mod flow_vars;
mod gather;
mod handle;
pub mod latency_histogram;
mod originate;
mod originate_action;
pub mod outcome;
mod pbx;
mod prompt_fetch;
mod recording_upload;
mod session;
mod simulator;
pub mod stats;
mod wall_clock;
mod wav;

pub use callee::AnsweredBy;
pub use config::{ConfigError, SimConfig};
pub use handle::SimHandle;
pub use latency_histogram::LatencySummary;
pub use outcome::{MixEntry, OutcomeKind, Rule};
pub use session::{BANNER, GARBAGE};
pub use simulator::{SimError, Simulator};
pub use stats::StatsSnapshot;
