//! Actions sent to Asterisk, and their encoding.
//!
//! Every value is checked before it reaches the socket: a CR or LF inside a value would end the
//! header and let the rest be read as headers of its own (header injection), so it is refused.

use std::borrow::Cow;
use std::time::Duration;

use thiserror::Error;

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ActionError {
    #[error("AMI header {key:?} contains a line break or NUL; refused")]
    LineBreak { key: String },
    #[error("AMI header name {key:?} is empty or contains ':' or a space")]
    BadKey { key: String },
    #[error("Originate needs Context/Exten/Priority or Application")]
    NoDestination,
}

/// A generic action: `Action: <name>` then headers in order. `ActionID` is added by the client.
#[derive(Clone, PartialEq, Eq)]
pub struct Action {
    name: Cow<'static, str>,
    headers: Vec<(Cow<'static, str>, String)>,
}

impl std::fmt::Debug for Action {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let headers: Vec<_> = self
            .headers
            .iter()
            .map(|(k, v)| {
                let v = if k.eq_ignore_ascii_case("Secret") {
                    "<redacted>"
                } else {
                    v.as_str()
                };
                (k.as_ref(), v)
            })
            .collect();
        f.debug_struct("Action")
            .field("name", &self.name)
            .field("headers", &headers)
            .finish()
    }
}

impl Action {
    pub fn new(name: impl Into<Cow<'static, str>>) -> Action {
        Action {
            name: name.into(),
            headers: Vec::new(),
        }
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// Appends a header; repeated keys are kept (`Variable`).
    pub fn header(mut self, key: impl Into<Cow<'static, str>>, value: impl Into<String>) -> Action {
        self.headers.push((key.into(), value.into()));
        self
    }

    pub fn get(&self, key: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(key))
            .map(|(_, v)| v.as_str())
    }

    pub fn login(username: &str, secret: &str) -> Action {
        Action::new("Login")
            .header("Username", username)
            .header("Secret", secret)
    }

    pub fn logoff() -> Action {
        Action::new("Logoff")
    }

    pub fn ping() -> Action {
        Action::new("Ping")
    }

    pub fn core_show_channels() -> Action {
        Action::new("CoreShowChannels")
    }

    pub fn command(cli: &str) -> Action {
        Action::new("Command").header("Command", cli)
    }

    /// Hangs up a channel by name (or by uniqueid, which Asterisk also accepts), with a Q.850 cause.
    pub fn hangup(channel: &str, cause: Option<u16>) -> Action {
        let a = Action::new("Hangup").header("Channel", channel);
        match cause {
            Some(c) => a.header("Cause", c.to_string()),
            None => a,
        }
    }

    /// Encodes with `action_id`, refusing any header that could break framing.
    pub fn encode(&self, action_id: &str, out: &mut Vec<u8>) -> Result<(), ActionError> {
        check_value("Action", &self.name)?;
        check_value("ActionID", action_id)?;
        for (k, v) in &self.headers {
            check_key(k)?;
            check_value(k, v)?;
        }
        out.extend_from_slice(b"Action: ");
        out.extend_from_slice(self.name.as_bytes());
        out.extend_from_slice(b"\r\nActionID: ");
        out.extend_from_slice(action_id.as_bytes());
        out.extend_from_slice(b"\r\n");
        for (k, v) in &self.headers {
            out.extend_from_slice(k.as_bytes());
            out.extend_from_slice(b": ");
            out.extend_from_slice(v.as_bytes());
            out.extend_from_slice(b"\r\n");
        }
        out.extend_from_slice(b"\r\n");
        Ok(())
    }
}

fn check_key(key: &str) -> Result<(), ActionError> {
    if key.is_empty()
        || key
            .bytes()
            .any(|b| b == b':' || b.is_ascii_whitespace() || b == 0)
    {
        return Err(ActionError::BadKey { key: key.into() });
    }
    Ok(())
}

fn check_value(key: &str, value: &str) -> Result<(), ActionError> {
    if value.bytes().any(|b| b == b'\r' || b == b'\n' || b == 0) {
        return Err(ActionError::LineBreak { key: key.into() });
    }
    Ok(())
}

/// Where an originated channel goes once answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Destination {
    Extension {
        context: String,
        exten: String,
        priority: u32,
    },
    Application {
        application: String,
        data: String,
    },
}

/// Builder for `Originate`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Originate {
    channel: String,
    destination: Option<Destination>,
    caller_id: Option<String>,
    timeout: Option<Duration>,
    is_async: bool,
    channel_id: Option<String>,
    other_channel_id: Option<String>,
    account: Option<String>,
    variables: Vec<(String, String)>,
}

impl Originate {
    /// `channel` is the dial string, e.g. `PJSIP/+15550100@trunk` or `Local/100@dialer`.
    pub fn new(channel: impl Into<String>) -> Originate {
        Originate {
            channel: channel.into(),
            destination: None,
            caller_id: None,
            timeout: None,
            is_async: true,
            channel_id: None,
            other_channel_id: None,
            account: None,
            variables: Vec::new(),
        }
    }

    pub fn extension(
        mut self,
        context: impl Into<String>,
        exten: impl Into<String>,
        priority: u32,
    ) -> Self {
        self.destination = Some(Destination::Extension {
            context: context.into(),
            exten: exten.into(),
            priority,
        });
        self
    }

    pub fn application(mut self, application: impl Into<String>, data: impl Into<String>) -> Self {
        self.destination = Some(Destination::Application {
            application: application.into(),
            data: data.into(),
        });
        self
    }

    pub fn caller_id(mut self, caller_id: impl Into<String>) -> Self {
        self.caller_id = Some(caller_id.into());
        self
    }

    /// Ring timeout (Asterisk takes milliseconds).
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }

    /// `Async: true` is the default: a synchronous Originate blocks the session until it ends.
    pub fn asynchronous(mut self, is_async: bool) -> Self {
        self.is_async = is_async;
        self
    }

    /// The channel's Uniqueid. Use fixed-length ids (UUIDs): Asterisk refuses an id that is a
    /// prefix of a live one.
    pub fn channel_id(mut self, id: impl Into<String>) -> Self {
        self.channel_id = Some(id.into());
        self
    }

    pub fn other_channel_id(mut self, id: impl Into<String>) -> Self {
        self.other_channel_id = Some(id.into());
        self
    }

    pub fn account(mut self, account: impl Into<String>) -> Self {
        self.account = Some(account.into());
        self
    }

    pub fn variable(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.variables.push((name.into(), value.into()));
        self
    }

    /// The generic action, validated (destination present, variable names sane).
    pub fn build(self) -> Result<Action, ActionError> {
        let mut a = Action::new("Originate").header("Channel", self.channel);
        match self.destination.ok_or(ActionError::NoDestination)? {
            Destination::Extension {
                context,
                exten,
                priority,
            } => {
                a = a
                    .header("Context", context)
                    .header("Exten", exten)
                    .header("Priority", priority.to_string());
            }
            Destination::Application { application, data } => {
                a = a.header("Application", application).header("Data", data);
            }
        }
        if let Some(t) = self.timeout {
            a = a.header("Timeout", t.as_millis().to_string());
        }
        if let Some(c) = self.caller_id {
            a = a.header("CallerID", c);
        }
        for (name, value) in self.variables {
            if name.is_empty() || name.contains('=') {
                return Err(ActionError::BadKey { key: name });
            }
            a = a.header("Variable", format!("{name}={value}"));
        }
        if let Some(id) = self.channel_id {
            a = a.header("ChannelId", id);
        }
        if let Some(id) = self.other_channel_id {
            a = a.header("OtherChannelId", id);
        }
        if let Some(acc) = self.account {
            a = a.header("Account", acc);
        }
        a = a.header("Async", if self.is_async { "true" } else { "false" });
        Ok(a)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn originate_encodes_like_the_recorded_one() {
        let a = Originate::new("SIP/1001@trunk")
            .extension("dialer-out", "s", 1)
            .timeout(Duration::from_millis(8000))
            .caller_id("\"Dialer\" <5550100>")
            .variable("DIALER_CALL_ID", "call-0001")
            .build()
            .expect("valid");
        let mut out = Vec::new();
        a.encode("answered-orig-1", &mut out).expect("encodes");
        let sent = "Action: Originate\r\nActionID: answered-orig-1\r\nChannel: SIP/1001@trunk\r\n\
            Context: dialer-out\r\nExten: s\r\nPriority: 1\r\nTimeout: 8000\r\n\
            CallerID: \"Dialer\" <5550100>\r\nVariable: DIALER_CALL_ID=call-0001\r\nAsync: true\r\n\r\n";
        assert_eq!(String::from_utf8(out).expect("utf8"), sent);
    }

    #[test]
    fn line_breaks_are_refused_everywhere() {
        for evil in ["x\r\nAction: Hangup", "x\nChannel: y", "x\0"] {
            let a = Originate::new("SIP/1@t")
                .extension("c", "s", 1)
                .caller_id(evil)
                .build()
                .expect("builds");
            assert!(matches!(
                a.encode("1", &mut Vec::new()),
                Err(ActionError::LineBreak { .. })
            ));
            let a = Originate::new("SIP/1@t")
                .extension("c", "s", 1)
                .variable("V", evil)
                .build()
                .expect("builds");
            assert!(a.encode("1", &mut Vec::new()).is_err());
            assert!(Action::ping().encode(evil, &mut Vec::new()).is_err());
        }
        assert!(
            Action::new("X")
                .header("Bad: key", "v")
                .encode("1", &mut Vec::new())
                .is_err()
        );
    }

    #[test]
    fn originate_needs_a_destination() {
        assert_eq!(
            Originate::new("SIP/1@t").build(),
            Err(ActionError::NoDestination)
        );
    }
}
