//! Canned CLI output for `Action: Command` (one `Output:` header per line).

use crate::pbx::Pbx;

pub const VERSION_LINE: &str =
    "Asterisk 20.20.1 built by root @ vm on a x86_64 running Linux on 2026-11-22 02:50:07 UTC";

/// As recorded in command.ami.
const SIP_SHOW_PEERS: &[&str] = &[
    "Name/username             Host                                    Dyn Forcerport Comedia    ACL Port     Status      Description                      ",
    "trunk                     127.0.0.1                                   No         No             5070     Unmonitored                                  ",
    "trunk-busy                127.0.0.1                                   No         No             5071     Unmonitored                                  ",
    "trunk-congestion          127.0.0.1                                   No         No             5073     Unmonitored                                  ",
    "trunk-dead                127.0.0.1                                   No         No             5099     UNREACHABLE                                  ",
    "trunk-decline             127.0.0.1                                   No         No             5075     Unmonitored                                  ",
    "trunk-dtmf                127.0.0.1                                   No         No             5076     Unmonitored                                  ",
    "trunk-hold                127.0.0.1                                   No         No             5077     Unmonitored                                  ",
    "trunk-noanswer            127.0.0.1                                   No         No             5072     Unmonitored                                  ",
    "trunk-notfound            127.0.0.1                                   No         No             5074     Unmonitored                                  ",
    "9 sip peers [Monitored: 0 online, 1 offline Unmonitored: 8 online, 0 offline]",
];

/// `(success, lines)` for a CLI command; unknown commands fail as Asterisk's CLI does.
pub(crate) fn run(cmd: &str, pbx: &Pbx) -> (bool, Vec<String>) {
    let words: Vec<String> = cmd
        .split_whitespace()
        .map(str::to_ascii_lowercase)
        .collect();
    let words: Vec<&str> = words.iter().map(String::as_str).collect();
    match words.as_slice() {
        ["core", "show", "version"] => (true, vec![VERSION_LINE.to_string()]),
        ["sip", "show", "peers"] => (true, SIP_SHOW_PEERS.iter().map(|s| s.to_string()).collect()),
        ["core", "show", "uptime"] => {
            let up = pbx.uptime_secs();
            (
                true,
                vec![
                    format!("System uptime: {up} seconds"),
                    format!("Last reload: {up} seconds"),
                ],
            )
        }
        ["core", "show", "channels", ..] => {
            let views = pbx.channel_views();
            let mut lines = vec![format!(
                "{:<20} {:<20} {:<7} {:<30}",
                "Channel", "Location", "State", "Application(Data)"
            )];
            for v in &views {
                let s = &v.snapshot;
                lines.push(format!(
                    "{:<20} {:<20} {:<7} {:<30}",
                    s.name,
                    format!("{}@{}:{}", s.exten, s.context, s.priority),
                    s.state.desc(),
                    format!("{}({})", v.app, v.app_data)
                ));
            }
            let n = views.len();
            lines.push(format!(
                "{n} active channel{}",
                if n == 1 { "" } else { "s" }
            ));
            lines.push(format!("{n} active call{}", if n == 1 { "" } else { "s" }));
            lines.push(format!(
                "{} calls processed",
                pbx.stats.snapshot().originates_total
            ));
            (true, lines)
        }
        _ => (
            false,
            vec![format!(
                "No such command '{cmd}' (type 'core show help {cmd}' for other possible commands)"
            )],
        ),
    }
}
