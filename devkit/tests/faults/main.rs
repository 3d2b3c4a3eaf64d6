//! Fault tests: the platform's real binaries while the parts under them fail, each on
//! infrastructure of the test's own (a PostgreSQL started with `initdb` + `pg_ctl` on a
//! temporary port), so stopping it touches nothing shared. `scripts/faults` runs the whole
//! suite; the tests not marked `#[ignore]` also run in `scripts/test` (CI).

// Shared with the `it` binary, which uses all of it.
mod broker_outage;
mod cluster;
#[allow(dead_code)]
#[path = "../it/helpers.rs"]
mod helpers;
mod pbx_faults;
mod pg_outage;
mod run;
