//! Integration tests, one binary: each test starts its own redis-server (see `support`).

mod acl;
mod admin_logins;
mod admin_page;
mod cli;
mod cluster;
mod compose;
mod differential;
mod embedded;
mod engine;
mod events;
mod failover;
mod import;
mod instances;
mod lock_cache;
mod memory;
mod policies;
mod proxy;
mod request_policy;
mod resends;
mod scripts;
mod secrets;
mod service;
mod support;
mod tls;
mod views;
mod webhooks;
