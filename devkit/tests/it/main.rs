//! The developer kit's tests, one binary: the platform end to end from its real binaries.

mod after_the_answer;
mod console;
mod end_to_end;
mod helpers;
mod test_mode;
