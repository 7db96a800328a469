//! The Lua scripts on their own: Redis does not undo a script that fails halfway, so a script
//! given arguments it cannot use must fail before writing anything, and no key may be left
//! without a TTL.

use crate::support::RedisServer;

const FAIL: &str = include_str!("../../scripts/fail.lua");
const LOG: &str = include_str!("../../scripts/log.lua");

fn eval(
    redis: &RedisServer,
    script: &str,
    keys: &[&str],
    args: &[&str],
) -> redis::RedisResult<redis::Value> {
    redis::cmd("EVAL")
        .arg(script)
        .arg(keys.len())
        .arg(keys)
        .arg(args)
        .query(&mut redis.connection())
}

const RECORD: &str = "lockout:attempt:{ip=10.0.0.1}";
const LOCK: &str = "lockout:lock:{ip=10.0.0.1}";
const LOCKOUTS: &str = "lockout:lockouts:{ip=10.0.0.1}";

#[test]
fn fail_lua_refuses_unusable_durations_before_writing() {
    let redis = RedisServer::start();
    let now = "1764380000";
    // cool-off, lockout, lockout memory, backoff, longest lockout
    for args in [
        ["0", "1000", "0", "1", "1000"],
        ["1000", "0", "0", "1", "1000"],
        ["1000", "18446744073709551615", "0", "1", "1000"],
        ["1000", "31536000001", "0", "1", "1000"],
        ["1.5", "1000", "0", "1", "1000"],
        ["soon", "1000", "0", "1", "1000"],
        ["1000", "1000", "-1", "2", "1000"],
        ["1000", "1000", "1000", "0.5", "1000"],
        ["1000", "1000", "1000", "2", "0"],
        ["1000", "1000", "31536000001", "2", "1000"],
    ] {
        let [cooloff, lockout, memory, backoff, longest] = args;
        // Limit 1: this failure would lock, so the lock's SET comes after the record's writes.
        let reply = eval(
            &redis,
            FAIL,
            &[RECORD, LOCK, LOCKOUTS],
            &[cooloff, lockout, "1", "1", now, memory, backoff, longest],
        );
        let err = reply.expect_err("refused");
        assert!(
            err.to_string().contains("durations must be whole numbers"),
            "{err}"
        );
        assert_eq!(redis.keys(), Vec::<String>::new(), "{args:?}");
    }
    eval(
        &redis,
        FAIL,
        &[RECORD, LOCK, LOCKOUTS],
        &[
            "1000",
            "31536000000",
            "1",
            "1",
            now,
            "60000",
            "2",
            "31536000000",
        ],
    )
    .unwrap();
    for key in [RECORD, LOCK, LOCKOUTS] {
        let pttl: i64 = redis::cmd("PTTL")
            .arg(key)
            .query(&mut redis.connection())
            .unwrap();
        assert!(pttl > 1000, "{key}: {pttl}");
    }
}

#[test]
fn log_lua_refuses_an_unusable_retention_before_writing() {
    let redis = RedisServer::start();
    for retention in ["0", "x", "1e300"] {
        let reply = eval(
            &redis,
            LOG,
            &["lockout:log:0"],
            &["0", retention, "100", "ip", "10.0.0.1"],
        );
        let err = reply.expect_err("refused");
        assert!(
            err.to_string()
                .contains("the retention must be a whole number"),
            "{err}"
        );
        assert_eq!(redis.keys(), Vec::<String>::new(), "{retention}");
    }
    eval(
        &redis,
        LOG,
        &["lockout:log:0"],
        &["0", "60000", "100", "ip", "10.0.0.1"],
    )
    .unwrap();
    let pttl: i64 = redis::cmd("PTTL")
        .arg("lockout:log:0")
        .query(&mut redis.connection())
        .unwrap();
    assert!(pttl > 0);
}
