//! The API's tests, one binary: the real application on port 0 against its own database and
//! queue names (see `helpers`), one module per area.

mod after_the_answer;
mod api_basics;
mod callbacks;
mod cli;
mod console;
mod crash_recovery;
mod dispatch_and_control;
mod dry_run;
mod helpers;
mod ingestion;
mod openapi;
mod overload;
mod raw_http;
mod self_service;
mod test_mode;
