//! Integration tests, one binary: each test starts its own redis-server (see `support`).

mod cli;
mod engine;
mod service;
mod support;
