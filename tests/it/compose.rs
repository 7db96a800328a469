//! The shipped docker-compose.yml's Redis: its command line, run by a real redis-server, keeps
//! lockouts across a restart and, full, refuses writes rather than evict.

use lockout::engine::Verdict;
use lockout::Attempt;

use crate::support::{policy, RedisServer};

/// The arguments after `redis-server` of the compose file's `redis` service (a flow sequence of
/// double-quoted strings, which is JSON).
fn compose_redis_arguments() -> Vec<String> {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/docker-compose.yml");
    let compose = std::fs::read_to_string(path).unwrap();
    let redis = compose
        .split_once("\n  redis:\n")
        .expect("a redis service")
        .1;
    let command = redis
        .lines()
        .take_while(|line| line.is_empty() || line.starts_with("    "))
        .find_map(|line| line.trim().strip_prefix("command:"))
        .expect("the redis service's command");
    let command: Vec<String> = serde_json::from_str(command.trim()).unwrap();
    assert_eq!(command[0], "redis-server");
    command[1..].to_vec()
}

#[tokio::test]
async fn the_compose_redis_keeps_lockouts_across_a_crash_and_never_evicts() {
    let arguments = compose_redis_arguments();
    let arguments: Vec<&str> = arguments.iter().map(String::as_str).collect();
    let mut redis = RedisServer::start_with(&arguments);
    let config = |name: &str| -> String {
        let pair: Vec<String> = redis::cmd("CONFIG")
            .arg("GET")
            .arg(name)
            .query(&mut redis.connection())
            .unwrap();
        pair[1].clone()
    };
    assert_eq!(config("appendonly"), "yes");
    assert_eq!(config("appendfsync"), "everysec");
    assert_eq!(config("maxmemory-policy"), "noeviction");

    let attacker = Attempt::parse("203.0.113.9", None, None, None).unwrap();
    let engine = redis.engine(policy(3, &[&["ip"]])).await;
    for _ in 0..3 {
        engine.fail(&attacker).await.unwrap();
    }
    assert!(matches!(
        engine.check(&attacker).await.unwrap(),
        Verdict::Locked(_)
    ));

    // Killed, as a crash or an OOM kill would: what Redis acknowledged was already written to
    // the append-only file (only its fsync waits for the next second).
    redis.restart();
    let engine = redis.engine(policy(3, &[&["ip"]])).await;
    assert!(
        matches!(engine.check(&attacker).await.unwrap(), Verdict::Locked(_)),
        "the lockout is back after the restart"
    );
}

#[tokio::test]
async fn a_full_compose_redis_refuses_to_count_rather_than_evict() {
    let mut arguments = compose_redis_arguments();
    // Below what an empty server already uses: every write is over the limit.
    arguments.extend(["--maxmemory".to_string(), "100kb".to_string()]);
    let arguments: Vec<&str> = arguments.iter().map(String::as_str).collect();
    let redis = RedisServer::start_with(&arguments);
    let engine = redis.engine(policy(3, &[&["ip"]])).await;
    let attacker = Attempt::parse("203.0.113.9", None, None, None).unwrap();
    let refused = engine.fail(&attacker).await.unwrap_err();
    assert!(
        matches!(refused, lockout::Error::Store { .. }),
        "a store error, answered as on_store_error dictates: {refused}"
    );
    assert!(refused.to_string().contains("OOM"), "{refused}");
}
