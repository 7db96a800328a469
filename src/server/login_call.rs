//! The engine calls of the login endpoints as values, so that one call can run on Redis or,
//! during an outage with `on_store_error = "local"`, on the local store (see `insurance`).

use std::future::Future;

use crate::attempt::Attempt;
use crate::engine::{Engine, FailureReport, Standing, Verdict};
use crate::error::Result;
use crate::store::any::AnyStore;

/// One login's engine call, runnable on any engine.
pub trait LoginCall: Sync {
    type Output: Send;

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
}

/// A `LoginCall` struct per engine method, each holding the attempt it runs on, and how its
/// answer is made without recording (from `Engine::inspect`'s standing, or the call itself
/// when it records nothing that a second run would add to).
macro_rules! login_calls {
    ($($(#[$doc:meta])* $name:ident => $method:ident -> $output:ty,
        unrecorded: $unrecorded:path;)*) => {$(
        $(#[$doc])*
        pub struct $name<'a>(pub &'a Attempt);

        impl LoginCall for $name<'_> {
            type Output = $output;

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
        }
    )*};
}

login_calls! {
    /// `Engine::check`.
    Check => check -> Verdict,
        unrecorded: unrecorded_check;
    /// `Engine::inspect`.
    Inspect => inspect -> Standing,
        unrecorded: Engine::inspect;
    /// `Engine::fail`.
    Fail => fail -> FailureReport,
        unrecorded: unrecorded_failure;
    /// `Engine::succeed`: clearing twice clears nothing more.
    Succeed => succeed -> bool,
        unrecorded: Engine::succeed;
}

/// A check's verdict, with no refused attempt recorded.
async fn unrecorded_check(engine: &Engine<AnyStore>, attempt: &Attempt) -> Result<Verdict> {
    Ok(engine.inspect(attempt).await?.verdict)
}

/// The report of a failure that was not counted here: the standing before it.
async fn unrecorded_failure(engine: &Engine<AnyStore>, attempt: &Attempt) -> Result<FailureReport> {
    let standing = engine.inspect(attempt).await?;
    let retry_after = match &standing.verdict {
        Verdict::Locked(lockout) => lockout.retry_after,
        Verdict::Allowed => None,
    };
    Ok(FailureReport {
        locked: standing.verdict.is_locked(),
        retry_after,
        failures: standing.failures,
        started: Vec::new(),
    })
}
