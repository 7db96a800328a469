//! One log line when Redis becomes unavailable and one when it answers again, with how many
//! calls failed meanwhile: during an outage every request fails the same way, and a line per
//! request would bury everything else in the log. Calls that succeed outside an outage cost one
//! atomic load.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;
use std::time::Instant;

#[derive(Default)]
pub struct OutageLog {
    in_outage: AtomicBool,
    state: Mutex<Option<Outage>>,
}

struct Outage {
    started: Instant,
    failed_calls: u64,
}

impl OutageLog {
    /// A store call failed because Redis is unavailable: `cause` is logged if this starts an
    /// outage, else only counted.
    pub fn failed(&self, operation: &str, cause: &dyn std::fmt::Display) {
        let mut state = self
            .state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        match state.as_mut() {
            Some(outage) => outage.failed_calls += 1,
            None => {
                *state = Some(Outage {
                    started: Instant::now(),
                    failed_calls: 1,
                });
                self.in_outage.store(true, Ordering::Release);
                tracing::warn!(
                    operation,
                    "store unavailable: {cause}; further failures are counted, not logged, until Redis answers again"
                );
            }
        }
    }

    /// A store call succeeded: ends the outage, if there was one.
    pub fn succeeded(&self) {
        if !self.in_outage.load(Ordering::Acquire) {
            return;
        }
        let mut state = self
            .state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if let Some(outage) = state.take() {
            self.in_outage.store(false, Ordering::Release);
            tracing::info!(
                failed_calls = outage.failed_calls,
                "store available again after {:.1} s",
                outage.started.elapsed().as_secs_f64()
            );
        }
    }
}
