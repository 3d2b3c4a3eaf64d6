//! The Originate action: its headers checked and parsed as Asterisk 20 does (the error texts are
//! its own), and the `OriginateResponse` event that reports how an async one ended.

use std::time::Duration;

use ami_bridge::Message;
use tokio::time::Instant;

use crate::action_headers::{ast_true, nonempty, number};
use crate::channel_events::{EventBuf, PRIV_CALL, Snapshot, UNKNOWN};
use crate::dial_string::DialString;

/// An Originate action, validated and parsed.
#[derive(Debug, Clone)]
pub(crate) struct OriginateRequest {
    pub action_id: Option<String>,
    /// The `Channel:` header as sent (failed OriginateResponses echo it).
    pub channel: String,
    pub dial: DialString,
    pub context: String,
    pub exten: String,
    pub priority: u32,
    /// `Application`/`Data` instead of a dialplan target.
    pub application: Option<(String, String)>,
    pub timeout: Duration,
    pub cid_num: Option<String>,
    pub cid_name: Option<String>,
    pub variables: Vec<(String, String)>,
    pub channel_id: Option<String>,
    pub other_channel_id: Option<String>,
    pub account: String,
    pub sync: bool,
    /// When the action was read (Originate-to-Newchannel latency starts here).
    pub received: Instant,
}

impl OriginateRequest {
    /// The request, or the `Message` of the error response Asterisk gives.
    pub(crate) fn parse(m: &Message) -> Result<OriginateRequest, &'static str> {
        let Some(channel) = nonempty(m, "Channel") else {
            return Err("Channel not specified");
        };
        // No dialplan labels here: a non-numeric priority is never found.
        let priority = number::<u32>(m, "Priority", 1).ok_or("Invalid priority")?;
        let timeout = number::<i64>(m, "Timeout", 30_000).ok_or("Invalid timeout")?;
        let Some(dial) = DialString::parse(channel) else {
            return Err("Invalid channel");
        };
        let application = nonempty(m, "Application")
            .map(|a| (a.to_string(), m.get("Data").unwrap_or("").to_string()));
        let (cid_num, cid_name) = parse_caller_id(m.get("CallerID").unwrap_or(""));
        let mut variables = Vec::new();
        for v in m.get_all("Variable") {
            for part in v.split(',') {
                if let Some((k, val)) = part.split_once('=') {
                    let k = k.trim();
                    if !k.is_empty() {
                        variables.push((k.to_string(), val.to_string()));
                    }
                }
            }
        }
        let owned = |k: &str| nonempty(m, k).map(str::to_string);
        Ok(OriginateRequest {
            action_id: m.get("ActionID").map(str::to_string),
            channel: channel.to_string(),
            dial,
            context: owned("Context").unwrap_or_else(|| "default".into()),
            exten: owned("Exten").unwrap_or_else(|| "s".into()),
            priority,
            application,
            timeout: Duration::from_millis(timeout.max(0) as u64),
            cid_num,
            cid_name,
            variables,
            channel_id: owned("ChannelId"),
            other_channel_id: owned("OtherChannelId"),
            account: m.get("Account").unwrap_or("").to_string(),
            sync: !m.get("Async").is_some_and(ast_true),
            received: Instant::now(),
        })
    }
}

/// Why an Originate got no channel.
#[derive(Debug, Clone, Copy)]
pub(crate) enum NoChannel {
    UnknownTech,
    Unreachable,
    Capacity,
    /// Too many Originates already waiting for a channel (`channel_setup`).
    SetupBacklog,
    ChannelIdInUse,
    ShuttingDown,
}

impl NoChannel {
    /// The outcome counted in the statistics.
    pub(crate) fn stat(self) -> &'static str {
        match self {
            NoChannel::UnknownTech => "unknown_tech",
            NoChannel::Unreachable => "unreachable",
            NoChannel::Capacity => "capacity",
            NoChannel::SetupBacklog => "setup_backlog",
            NoChannel::ChannelIdInUse => "channel_id_in_use",
            NoChannel::ShuttingDown => "shutting_down",
        }
    }
}

/// `Event: OriginateResponse`. `answered` is the channel on success (Reason 4), `None` on
/// failure: then `Channel` is the dial string and `Uniqueid` the ChannelId or `<unknown>`.
pub(crate) fn originate_response(
    out: &mut EventBuf,
    req: &OriginateRequest,
    answered: Option<&Snapshot>,
    reason: u32,
    channelvars: &[String],
) {
    out.begin_event("OriginateResponse", Some(PRIV_CALL));
    out.optional_header("ActionID", req.action_id.as_deref());
    out.header(
        "Response",
        if answered.is_some() {
            "Success"
        } else {
            "Failure"
        },
    );
    let (context, exten) = if req.application.is_some() {
        ("", "")
    } else {
        (req.context.as_str(), req.exten.as_str())
    };
    match answered {
        Some(s) => out.header("Channel", &s.name),
        None => out.header("Channel", &req.channel),
    }
    out.header("Context", context);
    out.header("Exten", exten);
    out.header("Reason", &reason.to_string());
    let uid = match answered {
        Some(s) => s.uniqueid.as_str(),
        None => req.channel_id.as_deref().unwrap_or(UNKNOWN),
    };
    out.header("Uniqueid", uid);
    out.header("CallerIDNum", req.cid_num.as_deref().unwrap_or(UNKNOWN));
    out.header("CallerIDName", req.cid_name.as_deref().unwrap_or(UNKNOWN));
    if let Some(s) = answered {
        for name in channelvars {
            let key = format!("ChanVariable({})", s.name);
            out.header(&key, &format!("{name}={}", s.var(name)));
        }
    }
    out.end();
}

/// `"Dialer" <5550100>` -> (number, name); a bare number or a bare name gives one of them.
fn parse_caller_id(v: &str) -> (Option<String>, Option<String>) {
    let v = v.trim();
    if v.is_empty() {
        return (None, None);
    }
    if let (Some(lt), Some(gt)) = (v.find('<'), v.rfind('>'))
        && lt < gt
    {
        let num = v[lt + 1..gt].trim();
        let name = v[..lt].trim().trim_matches('"').trim();
        return (
            (!num.is_empty()).then(|| num.to_string()),
            (!name.is_empty()).then(|| name.to_string()),
        );
    }
    if v.chars().all(|c| c.is_ascii_digit() || "+*#".contains(c)) {
        (Some(v.to_string()), None)
    } else {
        (None, Some(v.trim_matches('"').to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn caller_id_forms() {
        assert_eq!(
            parse_caller_id("\"Dialer\" <5550100>"),
            (Some("5550100".into()), Some("Dialer".into()))
        );
        assert_eq!(parse_caller_id("5550100"), (Some("5550100".into()), None));
        assert_eq!(parse_caller_id("Dialer"), (None, Some("Dialer".into())));
        assert_eq!(parse_caller_id(""), (None, None));
        assert_eq!(parse_caller_id("<>"), (None, None));
    }
}
