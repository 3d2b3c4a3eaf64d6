//! Every change of a call's or a batch's state that is not the dispatcher's AMI-driven
//! transitions. Each function writes inside the caller's transaction (the caller locks the
//! batch and reads it back), in as few statements as the change needs.

pub mod control;
pub mod schedule;
