//! The Lua scripts of `scripts/`, compiled into the binary. Each file states its KEYS/ARGV
//! contract; `RedisStore` runs them with EVALSHA and loads them again on NOSCRIPT.

use std::sync::LazyLock;

use redis::{Cmd, Script};

/// One script: its source (for SCRIPT LOAD) and its SHA1 (for EVALSHA).
pub(crate) struct LuaScript {
    source: &'static str,
    script: Script,
}

impl LuaScript {
    fn new(source: &'static str) -> Self {
        LuaScript {
            source,
            script: Script::new(source),
        }
    }

    pub(crate) fn sha(&self) -> &str {
        self.script.get_hash()
    }

    /// `EVALSHA sha numkeys keys... args...`
    pub(crate) fn evalsha<K: redis::ToRedisArgs, A: redis::ToRedisArgs>(
        &self,
        keys: &[K],
        args: A,
    ) -> Cmd {
        let mut cmd = redis::cmd("EVALSHA");
        cmd.arg(self.sha()).arg(keys.len()).arg(keys).arg(args);
        cmd
    }

    pub(crate) fn load(&self) -> Cmd {
        let mut cmd = redis::cmd("SCRIPT");
        cmd.arg("LOAD").arg(self.source);
        cmd
    }
}

pub(crate) static FAIL: LazyLock<LuaScript> =
    LazyLock::new(|| LuaScript::new(include_str!("../../scripts/fail.lua")));
pub(crate) static IMPORT: LazyLock<LuaScript> =
    LazyLock::new(|| LuaScript::new(include_str!("../../scripts/import.lua")));
pub(crate) static RESET_BEFORE: LazyLock<LuaScript> =
    LazyLock::new(|| LuaScript::new(include_str!("../../scripts/reset_before.lua")));
pub(crate) static LOG: LazyLock<LuaScript> =
    LazyLock::new(|| LuaScript::new(include_str!("../../scripts/log.lua")));
pub(crate) static TRIM_LOG: LazyLock<LuaScript> =
    LazyLock::new(|| LuaScript::new(include_str!("../../scripts/trim_log.lua")));

pub(crate) static SCHEDULE_LOCK_ENDS: LazyLock<LuaScript> =
    LazyLock::new(|| LuaScript::new(include_str!("../../scripts/schedule_lock_ends.lua")));
pub(crate) static END_LOCKOUTS: LazyLock<LuaScript> =
    LazyLock::new(|| LuaScript::new(include_str!("../../scripts/end_lockouts.lua")));
pub(crate) static REGISTER_LOCK_END_SCOPE: LazyLock<LuaScript> =
    LazyLock::new(|| LuaScript::new(include_str!("../../scripts/register_lock_end_scope.lua")));

pub(crate) static CLAIM_EVENTS: LazyLock<LuaScript> =
    LazyLock::new(|| LuaScript::new(include_str!("../../scripts/claim_events.lua")));

/// Every script, for loading after NOSCRIPT.
pub(crate) fn all() -> [&'static LuaScript; 9] {
    [
        &FAIL,
        &IMPORT,
        &RESET_BEFORE,
        &LOG,
        &TRIM_LOG,
        &SCHEDULE_LOCK_ENDS,
        &END_LOCKOUTS,
        &REGISTER_LOCK_END_SCOPE,
        &CLAIM_EVENTS,
    ]
}
