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

/// A `LoginCall` struct per engine method, each holding the attempt it runs on.
macro_rules! login_calls {
    ($($(#[$doc:meta])* $name:ident => $method:ident -> $output:ty;)*) => {$(
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
        }
    )*};
}

login_calls! {
    /// `Engine::check`.
    Check => check -> Verdict;
    /// `Engine::inspect`.
    Inspect => inspect -> Standing;
    /// `Engine::fail`.
    Fail => fail -> FailureReport;
    /// `Engine::succeed`.
    Succeed => succeed -> bool;
}
