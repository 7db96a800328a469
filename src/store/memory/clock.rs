//! Where the in-process store's time comes from: the system's clocks, or a clock tests move.

use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime};

/// Where the store's time comes from.
pub trait Clock: Send + Sync + 'static {
    /// For expiry: never goes back.
    fn instant(&self) -> Instant;
    /// For the times shown: first and last failure, log entries.
    fn wall(&self) -> SystemTime;
}

/// The system's clocks.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn instant(&self) -> Instant {
        Instant::now()
    }

    fn wall(&self) -> SystemTime {
        SystemTime::now()
    }
}

/// A clock that moves only when told: for tests of cool-offs and lock ends.
#[derive(Debug)]
pub struct ManualClock {
    start: (Instant, SystemTime),
    elapsed: Mutex<Duration>,
}

impl Default for ManualClock {
    fn default() -> Self {
        ManualClock {
            start: (Instant::now(), SystemTime::now()),
            elapsed: Mutex::new(Duration::ZERO),
        }
    }
}

impl ManualClock {
    pub fn advance(&self, by: Duration) {
        *self.elapsed.lock().expect("not poisoned") += by;
    }

    fn elapsed(&self) -> Duration {
        *self.elapsed.lock().expect("not poisoned")
    }
}

impl Clock for ManualClock {
    fn instant(&self) -> Instant {
        self.start.0 + self.elapsed()
    }

    fn wall(&self) -> SystemTime {
        self.start.1 + self.elapsed()
    }
}
