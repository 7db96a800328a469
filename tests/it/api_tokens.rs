//! Login API tokens bound to scopes (`api_tokens`): a site's token opens its own scopes only,
//! `api_token` every scope; a refusal names the scope, never the token; a bad entry stops
//! start-up naming its key, without the token.

use std::process::Command;

use crate::support::{free_port, lockout_command, RedisServer, ServeProcess};

const EVERY_SCOPE: &str = "every-scope-t0ken";
const SITE_A: &str = "site-a-t0ken-0123456789";
const SITE_B: &str = "site-b-t0ken-9876543210";

/// `POST path` with `body` and `Authorization: Bearer token` (none when empty): the status
/// and the body.
fn post(port: u16, path: &str, token: &str, body: &str) -> (String, String) {
    let mut command = Command::new("curl");
    command
        .args(["-s", "-w", "\n%{http_code}"])
        .args(["-H", "Content-Type: application/json"])
        .args(["--data", body]);
    if !token.is_empty() {
        command.args(["-H", &format!("Authorization: Bearer {token}")]);
    }
    let output = command
        .arg(format!("http://127.0.0.1:{port}{path}"))
        .output()
        .unwrap();
    let text = String::from_utf8(output.stdout).unwrap();
    let (body, status) = text.rsplit_once('\n').unwrap();
    (status.to_string(), body.to_string())
}

fn login(scope: Option<&str>) -> String {
    match scope {
        Some(scope) => format!(r#"{{"ip": "10.0.0.1", "username": "ann", "scope": "{scope}"}}"#),
        None => r#"{"ip": "10.0.0.1", "username": "ann"}"#.into(),
    }
}

const LOGIN_PATHS: [&str; 3] = ["/v1/check", "/v1/failure", "/v1/success"];

#[test]
fn a_bound_token_opens_its_own_scopes_only() {
    let redis = RedisServer::start();
    let port = free_port();
    let listen = format!("127.0.0.1:{port}");
    let tokens = format!(
        r#"[{{"token": "{SITE_A}", "scopes": ["site-a"]}},
            {{"token": "{SITE_B}", "scopes": ["site-b", "shared"]}}]"#
    );
    let serving = ServeProcess::start(
        &[],
        &[
            ("LOCKOUT_REDIS_URL", &redis.url()),
            ("LOCKOUT_LISTEN", &listen),
            ("LOCKOUT_API_TOKEN", EVERY_SCOPE),
            ("LOCKOUT_API_TOKENS", &tokens),
        ],
        port,
    );
    for path in LOGIN_PATHS {
        for (token, scope) in [(SITE_A, "site-a"), (SITE_B, "site-b"), (SITE_B, "shared")] {
            let (status, body) = post(port, path, token, &login(Some(scope)));
            assert_eq!(status, "200", "{path} {scope}: {body}");
        }
        for scope in [Some("site-a"), Some("site-b"), Some("elsewhere"), None] {
            let (status, body) = post(port, path, EVERY_SCOPE, &login(scope));
            assert_eq!(status, "200", "api_token, {path} {scope:?}: {body}");
        }
    }
    let before = redis.keys();
    for path in LOGIN_PATHS {
        let (status, body) = post(port, path, SITE_A, &login(Some("site-b")));
        assert_eq!(status, "403", "{path}: {body}");
        assert!(
            body.contains(r#"not for scope \"site-b\""#) && body.contains("site-a"),
            "{path}: {body}"
        );
        assert!(!body.contains(SITE_A), "{path}: {body}");
        let (status, body) = post(port, path, SITE_A, &login(None));
        assert_eq!(status, "403", "{path}, no scope: {body}");
        assert!(
            body.contains("scope: missing") && body.contains("site-a"),
            "{path}: {body}"
        );
        assert!(!body.contains(SITE_A), "{path}: {body}");
        // A scope that is not even valid is refused the same way, before it is read.
        let (status, body) = post(port, path, SITE_A, &login(Some("_admin")));
        assert_eq!(status, "403", "{path}, lockout's own scope: {body}");
        for token in ["wrong-t0ken", ""] {
            let (status, body) = post(port, path, token, &login(Some("site-a")));
            assert_eq!(status, "401", "{path} {token:?}: {body}");
        }
    }
    assert_eq!(redis.keys(), before, "a refused call touched no record");
    let output = serving.terminate();
    let log = String::from_utf8(output.stderr).unwrap();
    assert_eq!(output.status.code(), Some(0), "{log}");
    assert!(
        log.contains("login call refused: the API token is not for this scope"),
        "{log}"
    );
    for token in [EVERY_SCOPE, SITE_A, SITE_B] {
        assert!(!log.contains(token), "{token} in the log: {log}");
    }
}

#[test]
fn a_bad_entry_stops_start_up_naming_its_key_without_the_token() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("lockout.toml");
    let first = format!(r#"{{ token = "{SITE_A}", scopes = ["site-a"] }}"#);
    for (second, says) in [
        (
            format!(r#"{{ token = "{SITE_B}", scopes = ["_admin"] }}"#),
            "api_tokens[1].scopes[0]: \"_admin\" must be 1 to 64",
        ),
        (
            format!(r#"{{ token = "{SITE_B}", scopes = ["ok", "not ok"] }}"#),
            "api_tokens[1].scopes[1]: \"not ok\" must be 1 to 64",
        ),
        (
            format!(
                r#"{{ token = "{SITE_B}", scopes = ["{}"] }}"#,
                "a".repeat(65)
            ),
            "api_tokens[1].scopes[0]: ",
        ),
        (
            format!(r#"{{ token = "{SITE_B}", scopes = [] }}"#),
            "api_tokens[1].scopes: empty",
        ),
        (
            r#"{ token = "", scopes = ["site-b"] }"#.into(),
            "api_tokens[1].token: empty",
        ),
        (
            format!(r#"{{ token = "{SITE_A}", scopes = ["site-b"] }}"#),
            "api_tokens[1].token: api_tokens[0]'s token too",
        ),
        (
            format!(r#"{{ token = "{EVERY_SCOPE}", scopes = ["site-b"] }}"#),
            "api_tokens[1].token: the same as api_token",
        ),
        (
            r#"{ token = "an-admin-t0ken", scopes = ["site-b"] }"#.into(),
            "api_tokens[1].token: the same as admin.token",
        ),
        (
            format!(r#"{{ token = "{SITE_B}", scope = ["site-b"] }}"#),
            "api_tokens.1.scope: unknown field",
        ),
    ] {
        let toml = format!(
            "api_token = \"{EVERY_SCOPE}\"\napi_tokens = [{first}, {second}]\n\
             [admin]\ntoken = \"an-admin-t0ken\"\n"
        );
        std::fs::write(&file, toml).unwrap();
        let output = lockout_command(&[])
            .args(["--config", file.to_str().unwrap()])
            .args(["serve", "--listen", "127.0.0.1:0"])
            .output()
            .unwrap();
        let stderr = String::from_utf8(output.stderr).unwrap();
        assert_eq!(output.status.code(), Some(1), "{second}: {stderr}");
        assert!(stderr.contains(says), "{second}: {stderr}");
        for token in [SITE_A, SITE_B, EVERY_SCOPE, "an-admin-t0ken"] {
            assert!(!stderr.contains(token), "{token}: {stderr}");
        }
    }
    // From the environment: JSON, named by its variable; what is not JSON is not shown.
    for (value, says) in [
        (
            format!(r#"[{{"token": "{SITE_A}", "scopes": ["site a"]}}]"#),
            "api_tokens[0].scopes[0]: \"site a\"",
        ),
        (
            format!(r#"[{{"token": "{SITE_A}", "scopes": ["site-a"]"#),
            "api_tokens: invalid string, expected a sequence (environment variable \
             LOCKOUT_API_TOKENS)",
        ),
        (
            r#"[{"token": 12345678, "scopes": ["site-a"]}]"#.to_string(),
            "api_tokens.0.token: invalid integer, expected a string",
        ),
    ] {
        let output = lockout_command(&[("LOCKOUT_API_TOKENS", &value)])
            .args(["serve", "--listen", "127.0.0.1:0"])
            .output()
            .unwrap();
        let stderr = String::from_utf8(output.stderr).unwrap();
        assert_eq!(output.status.code(), Some(1), "{value}: {stderr}");
        assert!(stderr.contains(says), "{value}: {stderr}");
        assert!(
            !stderr.contains(SITE_A) && !stderr.contains("12345678"),
            "{stderr}"
        );
    }
}
