//! Why a connection or an action failed.

use std::time::Duration;

use thiserror::Error;

use crate::action::ActionError;

#[derive(Debug, Error)]
pub enum AmiError {
    #[error("cannot connect to AMI at {addr}: {source}")]
    Connect {
        addr: String,
        source: std::io::Error,
    },
    #[error("timed out connecting to AMI at {addr}")]
    ConnectTimeout { addr: String },
    #[error("not an Asterisk manager: banner {0:?}")]
    BadBanner(String),
    #[error("AMI login refused: {0}")]
    AuthFailed(String),
    #[error("AMI login got no answer in time")]
    LoginTimeout,
    #[error("AMI action {action} got no response within {timeout:?}")]
    Timeout { action: String, timeout: Duration },
    #[error("AMI connection lost before the response")]
    Disconnected,
    #[error("AMI not connected")]
    NotConnected,
    #[error("AMI client closed")]
    Closed,
    #[error("AMI {action} failed: {message}")]
    ActionFailed { action: String, message: String },
    #[error(transparent)]
    InvalidAction(#[from] ActionError),
    #[error("AMI I/O: {0}")]
    Io(#[from] std::io::Error),
}
