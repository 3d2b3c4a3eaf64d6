//! A PBX as operators see it: from its row (`enabled`) and its holder's last report
//! (`server_status`, written every second by the dispatcher that holds it).

crate::text_enum! {
    /// `connected`: its holder's AMI session is up, calls go to it; `backing_off`: connected
    /// but overloaded, taking calls at a reduced rate; `reconnecting`: its holder lost the
    /// session and is trying again; `handed_over`: its holder is giving it to another
    /// dispatcher; `not_followed`: enabled, but no dispatcher has reported on it in the last
    /// seconds (none running, or none holding it); `disabled`: an operator took it out.
    pub enum ServerState("server state") {
        Connected = "connected", BackingOff = "backing_off", Reconnecting = "reconnecting",
        HandedOver = "handed_over", NotFollowed = "not_followed", Disabled = "disabled",
    }
}

/// A holder's last report on a server.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ServerReport {
    /// Written within the last few seconds.
    pub fresh: bool,
    pub connected: bool,
    pub draining: bool,
    pub capacity_factor: f64,
}

impl ServerState {
    pub fn of(enabled: bool, report: Option<&ServerReport>) -> ServerState {
        match report {
            _ if !enabled => ServerState::Disabled,
            Some(r) if r.fresh && !r.connected => ServerState::Reconnecting,
            Some(r) if r.fresh && r.draining => ServerState::HandedOver,
            Some(r) if r.fresh && r.capacity_factor < 1.0 => ServerState::BackingOff,
            Some(r) if r.fresh => ServerState::Connected,
            _ => ServerState::NotFollowed,
        }
    }

    /// New calls may go to it.
    pub fn takes_calls(self) -> bool {
        matches!(self, ServerState::Connected | ServerState::BackingOff)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_server_s_state_from_its_row_and_its_holder_s_report() {
        let report = |fresh, connected, draining, capacity_factor| ServerReport {
            fresh,
            connected,
            draining,
            capacity_factor,
        };
        let cases = [
            (
                false,
                Some(report(true, true, false, 1.0)),
                ServerState::Disabled,
            ),
            (true, None, ServerState::NotFollowed),
            (
                true,
                Some(report(false, true, false, 1.0)),
                ServerState::NotFollowed,
            ),
            (
                true,
                Some(report(true, false, false, 1.0)),
                ServerState::Reconnecting,
            ),
            (
                true,
                Some(report(true, true, true, 1.0)),
                ServerState::HandedOver,
            ),
            (
                true,
                Some(report(true, true, false, 0.5)),
                ServerState::BackingOff,
            ),
            (
                true,
                Some(report(true, true, false, 1.0)),
                ServerState::Connected,
            ),
        ];
        for (enabled, r, want) in cases {
            assert_eq!(
                ServerState::of(enabled, r.as_ref()),
                want,
                "{enabled} {r:?}"
            );
        }
        let taking: Vec<ServerState> = ServerState::ALL
            .iter()
            .copied()
            .filter(|s| s.takes_calls())
            .collect();
        assert_eq!(taking, [ServerState::Connected, ServerState::BackingOff]);
    }
}
