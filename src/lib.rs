//! `lockout`: brute-force login protection with Django Axes' semantics, its state in Redis.
//!
//! A login service asks [`Engine::check`] before verifying a password, reports
//! [`Engine::fail`] after a wrong one and [`Engine::succeed`] after a right one. The map:
//!
//! - [`policy`] and [`config`]: what is counted and for how long, validated once ([`secret`]
//!   keeps passwords and tokens out of logs and `Debug`);
//! - [`attempt`]: one login attempt; [`identity`]: the identities it forms and their tags;
//!   [`devices`]: the device tokens that count a user's own device apart; [`unlock`]: the
//!   tokens that let a user unlock their own username once;
//! - [`engine`]: the Axes decisions, over a [`store::Store`]; [`lock_cache`] spares Redis
//!   the checks of identities known to be locked;
//! - [`store`]: the Redis store, its Lua scripts (`scripts/`) and key layout ([`keys`]);
//! - [`target`] and [`record`]: what operators list and reset; [`event`]: what happened to
//!   lockouts, and [`webhook`]: where events are sent;
//! - [`view`]: sorted, searched pages of records for admin lists;
//! - [`wire`]: the JSON shapes shared by the CLI and the HTTP API;
//! - [`cli`]: the `lockout` command line.

pub mod attempt;
pub mod cli;
pub mod config;
pub mod devices;
pub mod engine;
pub mod error;
pub mod event;
pub mod identity;
pub mod keys;
pub mod lock_cache;
pub mod policy;
pub mod record;
pub mod secret;
pub mod server;
mod signed;
pub mod store;
pub mod target;
pub mod tls;
pub mod unlock;
pub mod view;
pub mod webhook;
pub mod wire;

pub use attempt::{Attempt, Field};
pub use config::Config;
pub use engine::{Engine, FailureReport, LockReason, Lockout, Standing, Verdict};
pub use error::{Error, Result};
pub use identity::Identity;
pub use policy::{Combination, Policy};
pub use store::any::AnyStore;
pub use store::memory::{Clock, ManualClock, MemoryStore, SystemClock};
pub use store::redis::{RedisEndpoint, RedisOptions, RedisStore, RedisTls, Topology};
pub use store::Store;
pub use target::Target;
