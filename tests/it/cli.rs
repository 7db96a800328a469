//! The `lockout` binary: Axes' aliases with Axes' exact output, `--json` shapes, exit codes,
//! and configuration precedence (flags over environment over file).

use std::process::Command;
use std::time::{Duration, Instant};

use lockout::keys::KeyKind;
use serde_json::{json, Value};

use crate::support::{lockout_command, RedisServer};

struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

/// Runs `lockout args` against `url` with extra environment variables.
fn lockout_at(url: &str, env: &[(&str, &str)], args: &[&str]) -> Run {
    let output = lockout_command(env)
        .env("LOCKOUT_REDIS_URL", url)
        .args(args)
        .output()
        .expect("the lockout binary runs");
    Run {
        code: output.status.code().expect("exited"),
        stdout: String::from_utf8(output.stdout).unwrap(),
        stderr: String::from_utf8(output.stderr).unwrap(),
    }
}

fn lockout(server: &RedisServer, env: &[(&str, &str)], args: &[&str]) -> Run {
    lockout_at(&server.url(), env, args)
}

/// Runs a command that must succeed and answers its standard output.
fn ok(server: &RedisServer, env: &[(&str, &str)], args: &[&str]) -> String {
    let run = lockout(server, env, args);
    assert_eq!(run.code, 0, "{args:?}: {}", run.stderr);
    run.stdout
}

fn json_of(server: &RedisServer, env: &[(&str, &str)], args: &[&str]) -> Value {
    let mut with_json = vec!["--json"];
    with_json.extend_from_slice(args);
    serde_json::from_str(&ok(server, env, &with_json)).unwrap()
}

const PAIRS: (&str, &str) = (
    "LOCKOUT_POLICY_LOCKOUT_PARAMETERS",
    r#"[["ip","username"]]"#,
);

#[test]
fn axes_reset_commands_print_what_axes_prints() {
    let server = RedisServer::start();
    let env = [PAIRS];
    for (ip, username) in [
        ("10.0.0.1", "alice"),
        ("10.0.0.2", "alice"),
        ("10.0.0.2", "bob"),
    ] {
        ok(&server, &env, &["fail", "--ip", ip, "--username", username]);
    }
    assert_eq!(
        sorted_lines(&ok(&server, &env, &["axes_list_attempts"])),
        "10.0.0.1\talice\t1\n10.0.0.2\talice\t1\n10.0.0.2\tbob\t1\n"
    );
    assert_eq!(
        ok(&server, &env, &["axes_reset_ip", "10.0.0.1"]),
        "1 attempts removed.\n"
    );
    assert_eq!(
        ok(&server, &env, &["axes_reset_ip", "10.0.0.1"]),
        "No attempts found.\n"
    );
    assert_eq!(
        ok(
            &server,
            &env,
            &["axes_reset_ip_username", "10.0.0.2", "bob"]
        ),
        "1 attempts removed.\n"
    );
    assert_eq!(
        ok(&server, &env, &["axes_reset_username", "alice", "carol"]),
        "1 attempts removed.\n"
    );
    for (ip, username) in [("10.0.0.3", "dave"), ("10.0.0.4", "erin")] {
        ok(&server, &env, &["fail", "--ip", ip, "--username", username]);
    }
    assert_eq!(ok(&server, &env, &["axes_reset"]), "2 attempts removed.\n");
    assert_eq!(ok(&server, &env, &["axes_reset"]), "No attempts found.\n");

    assert_eq!(ok(&server, &env, &["axes_reset_logs"]), "No logs found.\n");
    assert_eq!(
        ok(&server, &env, &["axes_reset_logs", "0"]),
        "5 logs removed.\n"
    );
    ok(&server, &env, &["fail", "--ip", "10.0.0.5"]);
    assert_eq!(
        ok(&server, &env, &["axes_reset_logs", "--age", "1"]),
        "No logs found.\n"
    );
    assert_eq!(
        ok(&server, &env, &["axes_reset_logs", "--age", "0"]),
        "1 logs removed.\n"
    );
}

fn sorted_lines(text: &str) -> String {
    let mut lines: Vec<&str> = text.lines().collect();
    lines.sort();
    lines.iter().map(|line| format!("{line}\n")).collect()
}

#[test]
fn axes_list_attempts_writes_none_for_absent_fields() {
    let server = RedisServer::start();
    let env = [("LOCKOUT_POLICY_LOCKOUT_PARAMETERS", r#"["ip","username"]"#)];
    ok(
        &server,
        &env,
        &["fail", "--ip", "10.0.0.1", "--username", "alice"],
    );
    assert_eq!(
        sorted_lines(&ok(&server, &env, &["axes_list_attempts"])),
        "10.0.0.1\tNone\t1\nNone\talice\t1\n"
    );
}

#[test]
fn bad_usage_exits_2_and_deletes_nothing() {
    let server = RedisServer::start();
    ok(
        &server,
        &[],
        &["fail", "--ip", "10.0.0.1", "--username", "alice"],
    );
    for (args, says) in [
        (&["axes_reset_ip"][..], "required"),
        (&["axes_reset_ip", ""], "ip: must not be empty"),
        (
            &["axes_reset_ip", "10.0.0.999"],
            "\"10.0.0.999\" is not a valid IP address",
        ),
        (&["axes_reset_username", ""], "username: must not be empty"),
        (
            &["axes_reset_ip_username", "10.0.0.1", ""],
            "username: must not be empty",
        ),
        (&["reset"], "--all"),
        (&["reset", "--username", ""], "username: must not be empty"),
        (
            &["check", "--ip", "localhost"],
            "\"localhost\" is not a valid IP address",
        ),
        (&["check"], "--ip"),
        (&["frobnicate"], "unrecognized subcommand"),
    ] {
        let run = lockout(&server, &[], args);
        assert_eq!(run.code, 2, "{args:?}: {}", run.stderr);
        assert!(run.stderr.contains(says), "{args:?}: {}", run.stderr);
        assert!(!run.stderr.contains("panicked"), "{}", run.stderr);
    }
    assert_eq!(
        json_of(&server, &[], &["list"])["attempts"]
            .as_array()
            .unwrap()
            .len(),
        1,
        "nothing was deleted"
    );
}

#[test]
fn unreachable_redis_exits_1_with_one_line_naming_the_url() {
    let server = RedisServer::start();
    let url = server.url();
    drop(server);
    let started = Instant::now();
    let run = lockout_at(&url, &[], &["axes_reset"]);
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(run.code, 1);
    assert_eq!(run.stderr.lines().count(), 1, "{}", run.stderr);
    assert!(
        run.stderr
            .starts_with(&format!("lockout: Redis at {url}: ")),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr.to_lowercase().contains("refused"),
        "{}",
        run.stderr
    );
}

#[test]
fn invalid_configuration_exits_1_naming_the_key() {
    let server = RedisServer::start();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("lockout.toml");
    for (toml, env, says) in [
        (
            "[policy]\nfailure_limit = 0\n",
            vec![],
            "policy.failure_limit: ",
        ),
        ("[policy]\ncooloff = \"soon\"\n", vec![], "policy.cooloff: "),
        (
            "[policy]\ndeny = [\"10.0.0.0/40\"]\n",
            vec![],
            "policy.deny: \"10.0.0.0/40\"",
        ),
        (
            "[policy]\nfailure_limt = 3\n",
            vec![],
            "policy.failure_limt: unknown field",
        ),
        (
            "",
            vec![("LOCKOUT_POLICY_NEVER_LOCKOUT", "10.0.0.0/8,nope")],
            "policy.never_lockout: \"nope\"",
        ),
        (
            "",
            vec![("LOCKOUT_POLICY_COOLOFF", "0s")],
            "policy.cooloff: must be longer than 0",
        ),
        ("", vec![("LOCKOUT_PREFIX", "a*b")], "prefix: \"a*b\""),
    ] {
        std::fs::write(&file, toml).unwrap();
        let run = lockout(
            &server,
            &env,
            &[
                "--config",
                file.to_str().unwrap(),
                "check",
                "--ip",
                "10.0.0.1",
            ],
        );
        assert_eq!(run.code, 1, "{toml} {env:?}: {}", run.stderr);
        assert_eq!(run.stderr.lines().count(), 1, "{}", run.stderr);
        assert!(run.stderr.contains(says), "{toml} {env:?}: {}", run.stderr);
    }
    let run = lockout(
        &server,
        &[],
        &["--config", "/nonexistent/lockout.toml", "list"],
    );
    assert_eq!(run.code, 1);
    assert!(
        run.stderr.contains("/nonexistent/lockout.toml"),
        "{}",
        run.stderr
    );
    let run = lockout(&server, &[("LOCKOUT_LISTEN", "localhost")], &["serve"]);
    assert_eq!(run.code, 1, "serve refuses to start: {}", run.stderr);
    assert!(
        run.stderr
            .contains("listen: \"localhost\" is not an address:port"),
        "{}",
        run.stderr
    );
}

#[test]
fn flags_beat_environment_beat_file() {
    let server = RedisServer::start();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("lockout.toml");
    std::fs::write(
        &file,
        "prefix = \"file\"\n[policy]\nfailure_limit = 5\ncooloff = \"1h\"\n",
    )
    .unwrap();
    let config = file.to_str().unwrap();
    let fail = |env: &[(&str, &str)], extra: &[&str]| {
        let mut args = vec!["--json", "--config", config];
        args.extend_from_slice(extra);
        args.extend_from_slice(&["fail", "--ip", "10.0.0.1"]);
        serde_json::from_str::<Value>(&ok(&server, env, &args)).unwrap()
    };
    fail(&[], &[]);
    fail(&[("LOCKOUT_PREFIX", "env")], &[]);
    fail(&[("LOCKOUT_PREFIX", "env")], &["--prefix", "flag"]);
    let mut keys = server.keys();
    keys.sort();
    let shard = lockout::keys::Keyspace::log_shard("10.0.0.1".parse().unwrap());
    let expected: Vec<String> = ["env", "file", "flag"]
        .into_iter()
        .flat_map(|prefix| {
            [
                crate::support::key_of(prefix, KeyKind::Attempt, "ip=10.0.0.1"),
                lockout::keys::Keyspace::new(prefix).unwrap().log_key(shard),
            ]
        })
        .collect();
    assert_eq!(keys, expected);
    // The file's limit of 5 and cool-off of 1 h apply; the environment's limit wins over it.
    for _ in 0..3 {
        fail(&[], &[]);
    }
    let fifth = fail(&[], &[]);
    assert_eq!(fifth["locked"], true);
    assert_eq!(fifth["retry_after_secs"], 3600);
    let env_limit = fail(
        &[
            ("LOCKOUT_PREFIX", "env"),
            ("LOCKOUT_POLICY_FAILURE_LIMIT", "2"),
        ],
        &[],
    );
    assert_eq!(env_limit["locked"], true);
}

#[test]
fn json_shapes_match_the_http_api() {
    let server = RedisServer::start();
    let env = [
        (
            "LOCKOUT_POLICY_LOCKOUT_PARAMETERS",
            r#"["ip",["ip","username"]]"#,
        ),
        ("LOCKOUT_POLICY_FAILURE_LIMIT", "2"),
        ("LOCKOUT_POLICY_DENY", "192.0.2.0/24"),
    ];
    let args = [
        "--ip",
        "10.0.0.1",
        "--username",
        "alice",
        "--user-agent",
        "curl/8",
        "--path",
        "/login",
    ];
    let run = |command: &str, extra: &[&str]| {
        let mut all = vec![command];
        all.extend_from_slice(extra);
        json_of(&server, &env, &all)
    };
    assert_eq!(run("check", &args), json!({"locked": false}));
    assert_eq!(
        run("fail", &args),
        json!({"locked": false, "retry_after_secs": null, "failures": [
            {"parameters": ["ip"], "count": 1},
            {"parameters": ["ip", "username"], "count": 1},
        ]})
    );
    assert_eq!(
        run("fail", &args),
        json!({"locked": true, "retry_after_secs": 1800, "failures": [
            {"parameters": ["ip"], "count": 2},
            {"parameters": ["ip", "username"], "count": 2},
        ]})
    );
    assert_eq!(
        run("check", &["--ip", "10.0.0.1", "--username", "bob"]),
        json!({"locked": true, "reason": "lockout", "retry_after_secs": 1800, "locked_by": [["ip"]]})
    );
    assert_eq!(
        run("check", &["--ip", "192.0.2.9"]),
        json!({"locked": true, "reason": "deny_list", "retry_after_secs": null, "locked_by": []})
    );
    assert_eq!(
        run("succeed", &["--ip", "10.0.0.1"]),
        json!({"reset": false})
    );

    let attempts = run("list", &["--username", "alice", "--locked"]);
    let record = &attempts["attempts"][0];
    assert_eq!(attempts["attempts"].as_array().unwrap().len(), 1);
    assert_eq!(
        record["parameters"],
        json!({"ip": "10.0.0.1", "username": "alice"})
    );
    assert_eq!(record["failures"], 2);
    assert_eq!(record["locked"], true);
    assert_eq!(record["retry_after_secs"], 1800);
    assert_eq!(record["user_agent"], "curl/8");
    assert_eq!(record["path"], "/login");
    for time in ["first_failure", "last_failure"] {
        let text = record[time].as_str().unwrap();
        humantime::parse_rfc3339(text).unwrap_or_else(|err| panic!("{time} {text}: {err}"));
    }

    let logs = run("logs", &["--username", "alice", "--limit", "2"]);
    let entries = logs["logs"].as_array().unwrap();
    assert_eq!(entries.len(), 2);
    assert_eq!(entries[0]["outcome"], "failure");
    assert_eq!(entries[0]["ip"], "10.0.0.1");
    assert_eq!(entries[0]["user_agent"], "curl/8");
    assert_eq!(entries[0]["path"], "/login");
    let bob = &run("logs", &["--username", "bob"])["logs"][0];
    assert_eq!(
        (bob["outcome"].as_str(), bob["path"].as_str()),
        (Some("refused"), None)
    );

    // ip, ip+alice, and ip+bob (bob's refused check was recorded).
    assert_eq!(
        run("reset", &["--ip", "10.0.0.1", "--dry-run"]),
        json!({"removed": 3, "dry_run": true})
    );
    assert_eq!(
        run("reset", &["--ip", "10.0.0.1", "--username", "alice"]),
        json!({"removed": 1})
    );
    assert_eq!(run("reset", &["--all"]), json!({"removed": 2}));
    assert_eq!(run("axes_reset", &[]), json!({"removed": 0}));
    assert_eq!(
        run("reset-logs", &["--older-than", "1h"]),
        json!({"removed": 0})
    );
    // Two failures, bob's refusal and the success; allowed and deny-listed checks are not logged.
    assert_eq!(
        run("reset-logs", &["--older-than", "0s"]),
        json!({"removed": 4})
    );
}

#[test]
fn text_output_of_the_login_commands() {
    let server = RedisServer::start();
    let env = [("LOCKOUT_POLICY_FAILURE_LIMIT", "2")];
    let args = ["--ip", "10.0.0.1", "--username", "alice"];
    let run = |command: &str| {
        let mut all = vec![command];
        all.extend_from_slice(&args);
        ok(&server, &env, &all)
    };
    assert_eq!(run("check"), "allowed\n");
    assert_eq!(run("fail"), "not locked; failures: ip 1\n");
    assert_eq!(run("fail"), "locked: retry after 1800 s; failures: ip 2\n");
    assert_eq!(
        run("check"),
        "locked (lockout): retry after 1800 s; locked by ip\n"
    );
    assert_eq!(run("succeed"), "success recorded\n");
    let list = ok(&server, &env, &["list"]);
    assert!(list.starts_with("IDENTITY\tFAILURES\tLOCK\t"), "{list}");
    assert!(
        list.contains("ip=10.0.0.1\t3\tlocked, 1800 s left\t"),
        "{list}"
    );
    assert_eq!(
        ok(&server, &env, &["reset", "--ip", "10.0.0.1", "--dry-run"]),
        "1 attempt records would be removed.\n"
    );
    assert_eq!(
        ok(&server, &env, &["reset", "--all"]),
        "1 attempt records removed.\n"
    );
}

#[test]
fn resets_tell_every_lock_cache_which_identities_went() {
    let server = RedisServer::start();
    ok(&server, &[], &["fail", "--ip", "10.0.0.1"]);
    let mut listener = server.connection();
    let mut pubsub = listener.as_pubsub();
    pubsub.subscribe("lockout:resets").unwrap();
    pubsub
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    assert_eq!(
        ok(&server, &[], &["axes_reset_ip", "10.0.0.1"]),
        "1 attempts removed.\n"
    );
    let message: String = pubsub.get_message().unwrap().get_payload().unwrap();
    assert_eq!(message, "ip=10.0.0.1");
}

/// The reset spinner draws on a terminal (a pseudo-terminal made by `script`) and nowhere else.
#[test]
fn resets_show_progress_on_a_terminal_only() {
    let server = RedisServer::start();
    for n in 0..5 {
        ok(&server, &[], &["fail", "--ip", &format!("10.0.0.{n}")]);
    }
    let command = format!(
        "{} --redis-url {} reset --all --dry-run",
        env!("CARGO_BIN_EXE_lockout"),
        server.url()
    );
    let output = Command::new("script")
        .args(["-qec", &command, "/dev/null"])
        .env_remove("LOCKOUT_REDIS_URL")
        .output()
        .expect("script (util-linux) runs the command on a pseudo-terminal");
    let screen = String::from_utf8_lossy(&output.stdout);
    assert!(screen.contains("5 attempt records matched"), "{screen}");
    assert!(
        screen.contains("5 attempt records would be removed."),
        "{screen}"
    );
    let run = lockout(&server, &[], &["reset", "--all", "--dry-run"]);
    assert_eq!(run.stdout, "5 attempt records would be removed.\n");
    assert_eq!(run.stderr, "", "no spinner without a terminal");
}

#[test]
fn attacker_chosen_text_reaches_the_terminal_escaped() {
    let server = RedisServer::start();
    let username = "evil\u{1b}[2J\tname\nroot\\";
    let user_agent = "Mozilla\u{202e}gpj.exe\u{7}";
    ok(
        &server,
        &[PAIRS],
        &[
            "fail",
            "--ip",
            "10.0.0.1",
            "--username",
            username,
            "--user-agent",
            user_agent,
        ],
    );
    let escaped_username = "evil\\x1b[2J\\tname\\nroot\\\\";
    let escaped_user_agent = "Mozilla\\u202egpj.exe\\x07";
    let list = ok(&server, &[PAIRS], &["list"]);
    let axes = ok(&server, &[PAIRS], &["axes_list_attempts"]);
    let logs = ok(&server, &[PAIRS], &["logs"]);
    for output in [&list, &axes, &logs] {
        assert!(
            !output.contains(['\u{1b}', '\u{7}', '\u{202e}']),
            "raw control characters: {output:?}"
        );
        assert!(output.contains(escaped_username), "{output:?}");
    }
    assert!(list.contains(escaped_user_agent) && logs.contains(escaped_user_agent));
    assert_eq!(
        axes,
        format!("10.0.0.1\t{escaped_username}\t1\n"),
        "one line, three columns"
    );
    assert_eq!(list.lines().count(), 2, "a header and one record: {list:?}");
    let json = json_of(&server, &[PAIRS], &["list"]);
    assert_eq!(
        json["attempts"][0]["parameters"]["username"], username,
        "JSON stays exact"
    );
}

/// `text` with the seconds a lock has left replaced by `N`: a second may pass between two runs.
fn without_lock_times(text: &str) -> String {
    let mut shown = String::new();
    let mut rest = text;
    while let Some(at) = ["locked, ", "\"retry_after_secs\":"]
        .iter()
        .filter_map(|before| rest.find(before).map(|i| i + before.len()))
        .min()
    {
        shown.push_str(&rest[..at]);
        rest = rest[at..].trim_start_matches(|c: char| c.is_ascii_digit());
        shown.push('N');
    }
    shown.push_str(rest);
    shown
}

/// `--server URL`: the operator commands through a running service's admin API print what they
/// print on Redis, with the same exit codes.
#[test]
fn operator_commands_through_the_service_print_what_they_print_on_redis() {
    let redis = RedisServer::start();
    let port = crate::support::free_port();
    let service_env = [
        ("LOCKOUT_REDIS_URL", redis.url()),
        ("LOCKOUT_ADMIN_PASSWORD", "s3cret".to_string()),
        ("LOCKOUT_ADMIN_TOKEN", "t0ken".to_string()),
    ];
    let service_env: Vec<(&str, &str)> =
        service_env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let _serving = crate::support::ServeProcess::start(
        &["--listen", &format!("127.0.0.1:{port}")],
        &service_env,
        port,
    );
    let server = format!("http://127.0.0.1:{port}");
    for (ip, username) in [
        ("10.0.0.1", "alice"),
        ("10.0.0.1", "alice"),
        ("10.0.0.1", "alice"),
        ("10.0.0.2", "bob\tthe\u{1b}[31mbuilder"),
        ("10.0.0.3", "carol"),
    ] {
        ok(&redis, &[], &["fail", "--ip", ip, "--username", username]);
    }
    let through = |env: &[(&str, &str)], args: &[&str]| {
        let mut all = vec!["--server", server.as_str()];
        all.extend_from_slice(args);
        lockout(&redis, env, &all)
    };
    let token = [("LOCKOUT_ADMIN_TOKEN", "t0ken")];
    let password = [("LOCKOUT_ADMIN_PASSWORD", "s3cret")];
    for args in [
        &["list"][..],
        &["list", "--locked"],
        &["list", "--ip", "10.0.0.1"],
        &["--json", "list"],
        &["logs"],
        &["logs", "--username", "carol", "--limit", "1"],
        &["--json", "logs"],
        &["axes_list_attempts"],
        &["reset", "--ip", "10.0.0.1", "--ip", "10.0.0.3", "--dry-run"],
        &["--json", "reset", "--all", "--dry-run"],
        &["reset"],
        &["events"],
        &["--json", "events", "--limit", "1"],
    ] {
        let direct = lockout(&redis, &[], args);
        for auth in [&token[..], &password[..]] {
            let remote = through(auth, args);
            assert_eq!(
                (
                    remote.code,
                    without_lock_times(&remote.stdout),
                    &remote.stderr
                ),
                (
                    direct.code,
                    without_lock_times(&direct.stdout),
                    &direct.stderr
                ),
                "{args:?}"
            );
        }
    }

    let removed = through(&token, &["axes_reset_ip", "10.0.0.1", "10.0.0.3"]);
    assert_eq!(
        removed.stdout, "2 attempts removed.\n",
        "{}",
        removed.stderr
    );
    assert_eq!(ok(&redis, &[], &["axes_list_attempts"]).lines().count(), 1);
    let trimmed = through(&token, &["reset-logs", "--older-than", "0s"]);
    assert_eq!(
        trimmed.stdout, "5 log entries removed.\n",
        "{}",
        trimmed.stderr
    );
    assert_eq!(ok(&redis, &[], &["logs"]), "\n");

    let refused = through(&[("LOCKOUT_ADMIN_TOKEN", "wrong")], &["list"]);
    assert_eq!(refused.code, 1);
    assert!(
        refused
            .stderr
            .starts_with(&format!("lockout: lockout service at {server}: 401")),
        "{}",
        refused.stderr
    );
    let login = through(&token, &["fail", "--ip", "10.0.0.9"]);
    assert_eq!(login.code, 2, "{}", login.stderr);
    let https = lockout(&redis, &token, &["--server", "https://127.0.0.1:1", "list"]);
    assert_eq!(https.code, 2, "plain HTTP only: {}", https.stderr);
    let nowhere = lockout(&redis, &token, &["--server", "http://127.0.0.1:1", "list"]);
    assert_eq!(nowhere.code, 1);
    assert!(
        nowhere
            .stderr
            .starts_with("lockout: lockout service at http://127.0.0.1:1: "),
        "{}",
        nowhere.stderr
    );
}
