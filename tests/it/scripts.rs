//! The Lua scripts on their own: Redis does not undo a script that fails halfway, so a script
//! given arguments it cannot use must fail before writing anything, and no key may be left
//! without a TTL.

use crate::support::RedisServer;

const FAIL: &str = include_str!("../../scripts/fail.lua");
const LOG: &str = include_str!("../../scripts/log.lua");
const IMPORT: &str = include_str!("../../scripts/import.lua");
const RESET_BEFORE: &str = include_str!("../../scripts/reset_before.lua");

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

const RECORD: &str = "lockout:attempt:{0.178}ip=10.0.0.1";
const LOCK: &str = "lockout:lock:{0.178}ip=10.0.0.1";
const LOCKOUTS: &str = "lockout:lockouts:{0.178}ip=10.0.0.1";
const PAIR: [&str; 4] = [
    "lockout:attempt:{0.178}ip=10.0.0.1&username=a",
    "lockout:lock:{0.178}ip=10.0.0.1&username=a",
    "lockout:lockouts:{0.178}ip=10.0.0.1&username=a",
    "lockout:reset:{0.178}ip=10.0.0.1&username=a",
];
const LOG_KEY: &str = "lockout:log:{0.178}";

/// One identity's arguments: limit 1 (this failure would lock, so the lock's SET comes after
/// the record's writes), one failure, no metadata; backoff and longest lockout only with a
/// lockout memory.
fn identity_args<'a>(cooloff: &'a str, lockout: &'a str, repeat: [&'a str; 3]) -> Vec<&'a str> {
    let [memory, backoff, longest] = repeat;
    if memory == "0" {
        vec![cooloff, lockout, "1", "1", memory, "0"]
    } else {
        vec![cooloff, lockout, "1", "1", memory, backoff, longest, "0"]
    }
}

/// An identity's keys: its lockout count only with a lockout memory.
fn identity_keys<'a>(keys: &[&'a str], memory: &str) -> Vec<&'a str> {
    let (record, lock, lockouts) = (keys[0], keys[1], keys[2]);
    if memory == "0" {
        vec![record, lock]
    } else {
        vec![record, lock, lockouts]
    }
}

#[test]
fn fail_lua_refuses_unusable_durations_before_writing() {
    let redis = RedisServer::start();
    let now = "1764380000";
    let good = identity_args("1000", "1000", ["0", "1", "1000"]);
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
        let bad = identity_args(cooloff, lockout, [memory, backoff, longest]);
        // Alone, and second after a good identity: nothing is written either way.
        for identities in [vec![bad.clone()], vec![good.clone(), bad]] {
            let mut argv = vec![if identities.len() == 1 { "1" } else { "2" }, now, "0"];
            let mut keys = vec![];
            if identities.len() == 2 {
                keys.extend(identity_keys(&PAIR, "0"));
            }
            keys.extend(identity_keys(&[RECORD, LOCK, LOCKOUTS], memory));
            argv.extend(identities.concat());
            let err = eval(&redis, FAIL, &keys, &argv).expect_err("refused");
            assert!(
                err.to_string().contains("durations must be whole numbers"),
                "{err}"
            );
            assert_eq!(redis.keys(), Vec::<String>::new(), "{args:?}");
        }
    }
    // A log that cannot be appended: nothing is written.
    let mut argv = vec!["1", now, "0"];
    argv.extend(&good);
    argv.extend(["0", "0", "100", "ip", "10.0.0.1"]);
    let keys = [RECORD, LOCK, LOG_KEY];
    let err = eval(&redis, FAIL, &keys, &argv).expect_err("refused");
    assert!(err.to_string().contains("the log needs"), "{err}");
    assert_eq!(redis.keys(), Vec::<String>::new());

    let mut argv = vec!["2", now, "0"];
    argv.extend(identity_args(
        "1000",
        "31536000000",
        ["60000", "2", "31536000000"],
    ));
    argv.extend(&good);
    argv.extend(["0", "60000", "100", "ip", "10.0.0.1", "outcome", "failure"]);
    let mut keys = vec![RECORD, LOCK, LOCKOUTS];
    keys.extend(identity_keys(&PAIR, "0"));
    keys.push(LOG_KEY);
    let reply: Vec<i64> = redis::cmd("EVAL")
        .arg(FAIL)
        .arg(keys.len())
        .arg(&keys)
        .arg(&argv)
        .query(&mut redis.connection())
        .unwrap();
    assert_eq!(reply, [1, 31_536_000_000, 1, 1, 1, 1000, 1, 0]);
    for key in [RECORD, LOCK, LOCKOUTS, PAIR[0], PAIR[1], LOG_KEY] {
        let pttl: i64 = redis::cmd("PTTL")
            .arg(key)
            .query(&mut redis.connection())
            .unwrap();
        assert!(pttl > 0, "{key}: {pttl}");
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

#[test]
fn import_lua_refuses_unusable_arguments_before_writing_and_shortens_nothing() {
    let redis = RedisServer::start();
    // failures, first, last, expires in (ms), locked for (ms), metadata
    for (args, error) in [
        (&["0", "1", "2", "1000", "0"][..], "failures must be"),
        (&["4.0", "1", "2", "1000", "0"], "failures must be"),
        (&["4", "3", "2", "1000", "0"], "first <= last"),
        (&["4", "1", "2", "0", "0"], "durations"),
        (&["4", "1", "2", "1e3", "0"], "durations"),
        (&["4", "1", "2", "1000", "31536000001"], "durations"),
        (&["4", "1", "2", "1000", "0", "n", "9"], "metadata fields"),
        (&["4", "1", "2", "1000"], "expected 2 keys"),
    ] {
        let err = eval(&redis, IMPORT, &[RECORD, LOCK], args).expect_err("refused");
        assert!(err.to_string().contains(error), "{args:?}: {err}");
        assert_eq!(redis.keys(), Vec::<String>::new(), "{args:?}");
    }
    let pttl = |key: &str| -> i64 {
        redis::cmd("PTTL")
            .arg(key)
            .query(&mut redis.connection())
            .unwrap()
    };
    let import = |args: &[&str]| -> Vec<i64> {
        redis::cmd("EVAL")
            .arg(IMPORT)
            .arg(2)
            .arg(&[RECORD, LOCK])
            .arg(args)
            .query(&mut redis.connection())
            .unwrap()
    };
    assert_eq!(
        import(&["4", "10", "20", "60000", "30000", "ua", "curl"]),
        [4, 30000, 1]
    );
    assert!((1..=60000).contains(&pttl(RECORD)));
    assert!((1..=30000).contains(&pttl(LOCK)));
    // Smaller in every way: the count, the times and the expiries stay.
    let [count, lock_ms, started] = import(&["2", "15", "15", "10", "5"])[..] else {
        panic!("three numbers")
    };
    assert_eq!((count, started), (4, 0));
    assert!(lock_ms > 5, "{lock_ms}");
    assert!(pttl(RECORD) > 10 && pttl(LOCK) > 5);
    let fields: Vec<String> = redis::cmd("HMGET")
        .arg(RECORD)
        .arg(&["n", "f", "l", "ua"])
        .query(&mut redis.connection())
        .unwrap();
    assert_eq!(fields, ["4", "10", "20", "curl"]);
}

#[test]
fn reset_before_lua_refuses_unusable_arguments_and_spares_a_record_failed_after_the_reset() {
    let redis = RedisServer::start();
    let mut connection = redis.connection();
    let [record, lock, lockouts, marker] = PAIR;
    let would_lock = "lockout:would_lock:{0.178}ip=10.0.0.1&username=a";
    let keys = [record, lock, lockouts, would_lock, marker];
    redis::cmd("HSET")
        .arg(record)
        .arg("n")
        .arg(2)
        .arg("l")
        .arg(1_764_380_100)
        .exec(&mut connection)
        .unwrap();
    for args in [
        ["x", "60000", "0"],
        ["1764380000", "0", "0"],
        ["1764380000", "60000", "-1"],
        ["1764380000", "60000", "1.5"],
    ] {
        let err = eval(&redis, RESET_BEFORE, &keys, &args).unwrap_err();
        assert!(err.to_string().contains("reset_before.lua"), "{err}");
    }
    assert_eq!(redis.keys(), [record.to_string()], "nothing written");

    // The record's latest failure (second ...100) came after the reset (...000): it stays, and
    // the marker dates the reset 90 seconds back.
    let kept = eval(
        &redis,
        RESET_BEFORE,
        &keys,
        &["1764380000", "600000", "90000"],
    )
    .unwrap();
    assert_eq!(kept, redis::Value::Int(0));
    let life: u64 = redis::cmd("GET")
        .arg(marker)
        .query(&mut connection)
        .unwrap();
    let left: u64 = redis::cmd("PTTL")
        .arg(marker)
        .query(&mut connection)
        .unwrap();
    assert_eq!(life, 600_000);
    assert!((500_000..=510_000).contains(&left), "{left}");
    // A reset after it deletes it; an older reset does not age the marker.
    let deleted = eval(
        &redis,
        RESET_BEFORE,
        &keys,
        &["1764380200", "600000", "95000"],
    )
    .unwrap();
    assert_eq!(deleted, redis::Value::Int(1));
    let left: u64 = redis::cmd("PTTL")
        .arg(marker)
        .query(&mut connection)
        .unwrap();
    assert!((500_000..=510_000).contains(&left), "{left}");
    assert_eq!(redis.keys(), [marker.to_string()]);
}

const SPRAYING: [&str; 4] = [
    "lockout:spraying:{0.178}ip=10.0.0.1",
    "lockout:spraying_lock:{0.178}ip=10.0.0.1",
    "lockout:spraying_lockouts:{0.178}ip=10.0.0.1",
    "lockout:reset:{0.178}ip=10.0.0.1",
];

#[test]
fn fail_lua_refuses_unusable_spraying_arguments_before_writing() {
    let redis = RedisServer::start();
    let now = "1764380000";
    // After a good identity: its writes would come first, so a refusal proves the order.
    let good = identity_args("1000", "1000", ["0", "1", "1000"]);
    // member, limit, window, lockout, lockout memory (and backoff, longest lockout)
    for (spraying, error) in [
        (
            &["x", "10", "1000", "1000", "0"][..],
            "spraying needs a member",
        ),
        (
            &["1.5", "10", "1000", "1000", "0"],
            "spraying needs a member",
        ),
        (
            &["123456789012345678901", "10", "1000", "1000", "0"],
            "spraying needs a member",
        ),
        (&["7", "0", "1000", "1000", "0"], "spraying needs a member"),
        (
            &["7", "2.5", "1000", "1000", "0"],
            "spraying needs a member",
        ),
        (&["7", "10", "0", "1000", "0"], "durations must be"),
        (
            &["7", "10", "1000", "31536000001", "0"],
            "durations must be",
        ),
        (
            &["7", "10", "1000", "1000", "1000", "0.5", "1000"],
            "durations must be",
        ),
        (&["7", "10", "1000", "1000"], "durations must be"),
    ] {
        let mut argv = vec!["1", now, "0"];
        argv.extend(&good);
        argv.push("spraying");
        argv.extend(spraying);
        let mut keys = vec![RECORD, LOCK, SPRAYING[0], SPRAYING[1]];
        if spraying.len() == 7 {
            keys.push(SPRAYING[2]);
        }
        let err = eval(&redis, FAIL, &keys, &argv).expect_err("refused");
        assert!(err.to_string().contains(error), "{spraying:?}: {err}");
        assert_eq!(redis.keys(), Vec::<String>::new(), "{spraying:?}");
    }
    // No identity and no spraying count: nothing to do.
    let err = eval(&redis, FAIL, &[], &["0", now, "0"]).expect_err("refused");
    assert!(err.to_string().contains("expected n"), "{err}");

    // A spraying count alone (n = 0), refused attempts, repeat offenders, the log: the limit
    // of 2 reached at the second username; every key written has a TTL.
    let spray = |member: &str| -> Vec<i64> {
        let argv = [
            "0", now, "1", "spraying", member, "2", "60000", "30000", "600000", "2", "120000",
            "2000", "0", "60000", "100", "ip", "10.0.0.1", "outcome", "refused",
        ];
        let mut keys = SPRAYING.to_vec();
        keys.push(LOG_KEY);
        redis::cmd("EVAL")
            .arg(FAIL)
            .arg(keys.len())
            .arg(&keys)
            .arg(&argv[..])
            .query(&mut redis.connection())
            .unwrap()
    };
    assert_eq!(spray("7"), [1, -2, 0, 0]);
    assert_eq!(spray("7"), [1, -2, 0, 0], "the same username again");
    assert_eq!(spray(""), [1, -2, 0, 0], "no username");
    assert_eq!(spray("-8"), [2, 30000, 1, 1]);
    assert_eq!(
        spray("9"),
        [2, 30000, 0, 1],
        "renewed; the set holds the limit at most"
    );
    for key in [SPRAYING[0], SPRAYING[1], SPRAYING[2], LOG_KEY] {
        let pttl: i64 = redis::cmd("PTTL")
            .arg(key)
            .query(&mut redis.connection())
            .unwrap();
        assert!(pttl > 0, "{key}: {pttl}");
    }
    // A reset's marker drops refusals: nothing counted, nothing renewed.
    let () = redis::cmd("SET")
        .arg(SPRAYING[3])
        .arg("1")
        .arg("PX")
        .arg(2000)
        .query(&mut redis.connection())
        .unwrap();
    assert_eq!(spray("10"), [0, -2, 0, 0]);
}
