//! An Originate `Channel:` value split the way Asterisk reads it: `TECH/data`, where data is
//! `user@peer` (SIP, PJSIP, IAX2), `exten@context` (Local) or just `peer`.

/// Technologies the simulator knows; any other fails like `Foo/1007` did.
const KNOWN_TECHS: &[&str] = &["SIP", "PJSIP", "IAX2", "DAHDI", "Local"];

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DialString {
    /// As Asterisk spells the technology in channel names (`SIP`, `PJSIP`, `Local`).
    pub tech: String,
    /// Everything after `TECH/` (Dial events' `DialString`).
    pub data: String,
    /// The dialed number: the user part (`+15550100`, `5550107`, `answer`).
    pub number: String,
    /// The peer/endpoint (`trunk`), or for Local the context (`default` when absent).
    pub peer: String,
    pub known: bool,
    pub local: bool,
}

impl DialString {
    /// `None` when there is no `/` (Asterisk answers "Invalid channel").
    pub fn parse(channel: &str) -> Option<DialString> {
        let (tech, data) = channel.split_once('/')?;
        if tech.is_empty() {
            return None;
        }
        let canonical = KNOWN_TECHS
            .iter()
            .find(|t| t.eq_ignore_ascii_case(tech))
            .copied();
        let local = canonical == Some("Local");
        // Local/exten@context/n: options after a second slash are not part of the exten.
        let data_main = if local {
            data.split('/').next().unwrap_or(data)
        } else {
            data
        };
        let (number, peer) = match data_main.split_once('@') {
            Some((user, peer)) => (user.to_string(), peer.to_string()),
            None if local => (data_main.to_string(), "default".to_string()),
            None => (data_main.to_string(), data_main.to_string()),
        };
        Some(DialString {
            tech: canonical.unwrap_or(tech).to_string(),
            data: data.to_string(),
            number,
            peer,
            known: canonical.is_some(),
            local,
        })
    }

    /// The channel name prefix before the `-0000000N` sequence: `SIP/trunk`,
    /// `Local/answer@dialer-sim`.
    pub fn channel_base(&self) -> String {
        if self.local {
            format!("Local/{}@{}", self.number, self.peer)
        } else {
            format!("{}/{}", self.tech, self.peer)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sip_pjsip_local_and_unknown() {
        let d = DialString::parse("SIP/1001@trunk").expect("parses");
        assert_eq!(
            (d.number.as_str(), d.channel_base().as_str()),
            ("1001", "SIP/trunk")
        );
        assert_eq!(d.data, "1001@trunk");
        let d = DialString::parse("PJSIP/+15550100@trunk").expect("parses");
        assert_eq!(
            (d.number.as_str(), d.channel_base().as_str()),
            ("+15550100", "PJSIP/trunk")
        );
        let d = DialString::parse("Local/5550107@ctx").expect("parses");
        assert!(d.local);
        assert_eq!(
            (d.number.as_str(), d.channel_base().as_str()),
            ("5550107", "Local/5550107@ctx")
        );
        let d = DialString::parse("local/busy").expect("parses");
        assert_eq!(d.channel_base(), "Local/busy@default");
        let d = DialString::parse("SIP/1001").expect("parses");
        assert_eq!(
            (d.number.as_str(), d.channel_base().as_str()),
            ("1001", "SIP/1001")
        );
        let d = DialString::parse("Foo/1007").expect("parses");
        assert!(!d.known);
        assert_eq!(DialString::parse("nochannel"), None);
        assert_eq!(DialString::parse("/x"), None);
    }
}
