//! A circuit per endpoint: after enough failures in a row the endpoint is left alone for a
//! cooldown (its events wait without using up tries), then a single probe decides whether it
//! is back. Each reopening doubles the cooldown, up to a ceiling.

use std::time::{Duration, Instant};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CircuitSettings {
    /// Failures in a row that open the circuit.
    pub failures_to_open: u32,
    pub first_cooldown: Duration,
    pub max_cooldown: Duration,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CircuitState {
    Closed,
    /// Nothing is sent until the instant.
    Open {
        until: Instant,
    },
    /// One probe may go; its answer closes or reopens the circuit.
    HalfOpen {
        probe_in_flight: bool,
    },
}

#[derive(Debug, Clone)]
pub struct Circuit {
    settings: CircuitSettings,
    state: CircuitState,
    failures_in_a_row: u32,
    cooldown: Duration,
}

impl Circuit {
    pub fn new(settings: CircuitSettings) -> Circuit {
        Circuit {
            settings,
            state: CircuitState::Closed,
            failures_in_a_row: 0,
            cooldown: settings.first_cooldown,
        }
    }

    pub fn state(&self) -> CircuitState {
        self.state
    }

    /// Closed with no failure since the last success: nothing worth keeping.
    pub fn is_pristine(&self) -> bool {
        self.state == CircuitState::Closed && self.failures_in_a_row == 0
    }

    /// Moves an open circuit whose cooldown has passed to half-open.
    pub fn tick(&mut self, now: Instant) {
        if let CircuitState::Open { until } = self.state
            && now >= until
        {
            self.state = CircuitState::HalfOpen {
                probe_in_flight: false,
            };
        }
    }

    /// How many more requests may start now, given the endpoint's own cap.
    pub fn allowance(&mut self, now: Instant, cap: usize, in_flight: usize) -> usize {
        self.tick(now);
        match self.state {
            CircuitState::Closed => cap.saturating_sub(in_flight),
            CircuitState::Open { .. } => 0,
            CircuitState::HalfOpen { probe_in_flight } => {
                usize::from(!probe_in_flight && in_flight == 0)
            }
        }
    }

    /// Call when a request starts.
    pub fn on_start(&mut self) {
        if let CircuitState::HalfOpen { .. } = self.state {
            self.state = CircuitState::HalfOpen {
                probe_in_flight: true,
            };
        }
    }

    pub fn on_success(&mut self) {
        self.state = CircuitState::Closed;
        self.failures_in_a_row = 0;
        self.cooldown = self.settings.first_cooldown;
    }

    /// Returns the end of the cooldown if this failure opened (or reopened) the circuit.
    pub fn on_failure(&mut self, now: Instant) -> Option<Instant> {
        self.failures_in_a_row = self.failures_in_a_row.saturating_add(1);
        match self.state {
            CircuitState::HalfOpen { .. } => {
                self.cooldown = (self.cooldown * 2).min(self.settings.max_cooldown);
                Some(self.open(now))
            }
            CircuitState::Closed if self.failures_in_a_row >= self.settings.failures_to_open => {
                Some(self.open(now))
            }
            _ => None,
        }
    }

    fn open(&mut self, now: Instant) -> Instant {
        let until = now + self.cooldown;
        self.state = CircuitState::Open { until };
        until
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SETTINGS: CircuitSettings = CircuitSettings {
        failures_to_open: 3,
        first_cooldown: Duration::from_secs(10),
        max_cooldown: Duration::from_secs(25),
    };

    #[test]
    fn opens_after_failures_in_a_row_and_probes_after_the_cooldown() {
        let t0 = Instant::now();
        let mut c = Circuit::new(SETTINGS);
        assert_eq!(c.allowance(t0, 4, 1), 3);
        assert_eq!(c.on_failure(t0), None);
        c.on_success();
        assert_eq!(c.on_failure(t0), None);
        assert_eq!(c.on_failure(t0), None);
        let until = c.on_failure(t0).expect("third failure in a row opens");
        assert_eq!(until, t0 + Duration::from_secs(10));
        assert_eq!(c.allowance(t0 + Duration::from_secs(9), 4, 0), 0);
        // Half-open: one probe at a time.
        let later = t0 + Duration::from_secs(10);
        assert_eq!(c.allowance(later, 4, 0), 1);
        c.on_start();
        assert_eq!(c.allowance(later, 4, 1), 0);
        // A failed probe reopens with a doubled cooldown, capped.
        assert_eq!(c.on_failure(later), Some(later + Duration::from_secs(20)));
        let later2 = later + Duration::from_secs(20);
        assert_eq!(c.allowance(later2, 4, 0), 1);
        c.on_start();
        assert_eq!(c.on_failure(later2), Some(later2 + Duration::from_secs(25)));
        // A successful probe closes it and resets the cooldown.
        let later3 = later2 + Duration::from_secs(25);
        assert_eq!(c.allowance(later3, 4, 0), 1);
        c.on_start();
        c.on_success();
        assert_eq!(c.state(), CircuitState::Closed);
        assert_eq!(c.allowance(later3, 4, 0), 4);
        assert_eq!(c.on_failure(later3), None);
    }
}
