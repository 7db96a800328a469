//! The engine calls of the login endpoints as values, so that one call can run on Redis or,
//! during an outage with `on_store_error = "local"`, on the local store (see `insurance`).

use std::future::Future;
use std::time::Duration;

use crate::attempt::Attempt;
use crate::engine::{Engine, FailureReport, LockReason, Standing, Verdict};
use crate::error::Result;
use crate::policy::Combination;
use crate::store::any::AnyStore;

/// One login's engine call, runnable on any engine.
pub trait LoginCall: Sync {
    type Output: Send;

    /// Whether the call clears the attempt's identities under `reset_on_success`.
    const CLEARS: bool;

    fn run<'e>(
        &'e self,
        engine: &'e Engine<AnyStore>,
    ) -> impl Future<Output = Result<Self::Output>> + Send + 'e;

    /// Answers what `run` would, recording nothing: for a call Redis may have run already
    /// (sent, its reply lost), whose count must not be made a second time.
    fn answer_unrecorded<'e>(
        &'e self,
        engine: &'e Engine<AnyStore>,
    ) -> impl Future<Output = Result<Self::Output>> + Send + 'e;

    /// The attempt the call runs on.
    fn attempt(&self) -> &Attempt;

    /// The locks `output` tells of: the combinations locked, and when the last of them ends.
    fn locks(output: &Self::Output) -> Option<(&[Combination], Duration)>;
}

/// A `LoginCall` struct per engine method, each holding the attempt it runs on, and how its
/// answer is made without recording (from `Engine::inspect`'s standing, or the call itself
/// when it records nothing that a second run would add to).
macro_rules! login_calls {
    ($($(#[$doc:meta])* $name:ident => $method:ident -> $output:ty,
        unrecorded: $unrecorded:path, locks: $locks:path, clears: $clears:literal;)*) => {$(
        $(#[$doc])*
        pub struct $name<'a>(pub &'a Attempt);

        impl LoginCall for $name<'_> {
            type Output = $output;
            const CLEARS: bool = $clears;

            fn run<'e>(
                &'e self,
                engine: &'e Engine<AnyStore>,
            ) -> impl Future<Output = Result<$output>> + Send + 'e {
                engine.$method(self.0)
            }

            fn answer_unrecorded<'e>(
                &'e self,
                engine: &'e Engine<AnyStore>,
            ) -> impl Future<Output = Result<$output>> + Send + 'e {
                $unrecorded(engine, self.0)
            }

            fn attempt(&self) -> &Attempt {
                self.0
            }

            fn locks(output: &$output) -> Option<(&[Combination], Duration)> {
                $locks(output)
            }
        }
    )*};
}

login_calls! {
    /// `Engine::check`.
    Check => check -> Verdict,
        unrecorded: unrecorded_check, locks: verdict_locks, clears: false;
    /// `Engine::inspect`.
    Inspect => inspect -> Standing,
        unrecorded: Engine::inspect, locks: standing_locks, clears: false;
    /// `Engine::fail`.
    Fail => fail -> FailureReport,
        unrecorded: unrecorded_failure, locks: failure_locks, clears: false;
    /// `Engine::succeed`: clearing twice clears nothing more.
    Succeed => succeed -> bool,
        unrecorded: Engine::succeed, locks: no_locks, clears: true;
}

/// A check's verdict, with no refused attempt recorded.
async fn unrecorded_check(engine: &Engine<AnyStore>, attempt: &Attempt) -> Result<Verdict> {
    Ok(engine.inspect(attempt).await?.verdict)
}

/// The report of a failure that was not counted here: the standing before it.
async fn unrecorded_failure(engine: &Engine<AnyStore>, attempt: &Attempt) -> Result<FailureReport> {
    let standing = engine.inspect(attempt).await?;
    let locked = standing.verdict.is_locked();
    let (retry_after, locked_by, would_lock) = match standing.verdict {
        Verdict::Locked(lockout) => (lockout.retry_after, lockout.locked_by, None),
        Verdict::WouldLock(lockout) => (None, Vec::new(), Some(lockout)),
        Verdict::Allowed => (None, Vec::new(), None),
    };
    Ok(FailureReport {
        locked,
        retry_after,
        failures: standing.failures,
        started: Vec::new(),
        locked_by,
        would_lock,
        spraying_started: false,
    })
}

/// A verdict's locks (a deny-listed IP has none).
fn verdict_locks(verdict: &Verdict) -> Option<(&[Combination], Duration)> {
    match verdict {
        Verdict::Locked(lockout) if lockout.reason == LockReason::Lockout => {
            Some((&lockout.locked_by, lockout.retry_after?))
        }
        _ => None,
    }
}

fn standing_locks(standing: &Standing) -> Option<(&[Combination], Duration)> {
    verdict_locks(&standing.verdict)
}

fn failure_locks(report: &FailureReport) -> Option<(&[Combination], Duration)> {
    Some((&report.locked_by, report.retry_after?))
}

fn no_locks(_: &bool) -> Option<(&[Combination], Duration)> {
    None
}
