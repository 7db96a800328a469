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
}

/// `Engine::check`.
pub struct Check<'a>(pub &'a Attempt);
/// `Engine::inspect`.
pub struct Inspect<'a>(pub &'a Attempt);
/// `Engine::fail`.
pub struct Fail<'a>(pub &'a Attempt);
/// `Engine::succeed`.
pub struct Succeed<'a>(pub &'a Attempt);

impl LoginCall for Check<'_> {
    type Output = Verdict;

    fn run<'e>(
        &'e self,
        engine: &'e Engine<AnyStore>,
    ) -> impl Future<Output = Result<Verdict>> + Send + 'e {
        engine.check(self.0)
    }
}

impl LoginCall for Inspect<'_> {
    type Output = Standing;

    fn run<'e>(
        &'e self,
        engine: &'e Engine<AnyStore>,
    ) -> impl Future<Output = Result<Standing>> + Send + 'e {
        engine.inspect(self.0)
    }
}

impl LoginCall for Fail<'_> {
    type Output = FailureReport;

    fn run<'e>(
        &'e self,
        engine: &'e Engine<AnyStore>,
    ) -> impl Future<Output = Result<FailureReport>> + Send + 'e {
        engine.fail(self.0)
    }
}

impl LoginCall for Succeed<'_> {
    type Output = bool;

    fn run<'e>(
        &'e self,
        engine: &'e Engine<AnyStore>,
    ) -> impl Future<Output = Result<bool>> + Send + 'e {
        engine.succeed(self.0)
    }
}
