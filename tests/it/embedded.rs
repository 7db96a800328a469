//! Without Redis: `lockout serve` with nothing configured runs on its in-process store, and the
//! CLI reaches that state through `--server`.

use reqwest::StatusCode;
use serde_json::json;

use crate::support::{free_port, http_client, lockout_command, post, ServeProcess};

#[tokio::test]
async fn serve_with_no_configuration_and_no_redis_protects_logins() {
    let port = free_port();
    let admin = [
        ("LOCKOUT_ADMIN_PASSWORD", "s3cret"),
        ("LOCKOUT_ADMIN_TOKEN", "t0ken"),
    ];
    let serving = ServeProcess::start(&["--listen", &format!("127.0.0.1:{port}")], &admin, port);
    let server = format!("http://127.0.0.1:{port}");
    let client = http_client();
    let check = format!("{server}/v1/check");
    let attempt = json!({"ip": "203.0.113.7", "username": "alice"});

    assert_eq!(
        post(&client, &check, attempt.clone()).await,
        (StatusCode::OK, json!({"locked": false}))
    );
    for failures in 1..=3 {
        let (status, answer) =
            post(&client, &format!("{server}/v1/failure"), attempt.clone()).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(answer["locked"], failures == 3, "{answer}");
        assert_eq!(answer["failures"][0]["count"], failures, "{answer}");
    }
    let (_, locked) = post(&client, &check, attempt.clone()).await;
    assert_eq!(locked["locked"], true, "{locked}");
    assert_eq!(locked["reason"], "lockout", "{locked}");
    assert_eq!(
        locked.get("degraded"),
        None,
        "the in-process store is no outage"
    );

    let direct = lockout_command(&admin).arg("list").output().unwrap();
    assert_eq!(direct.status.code(), Some(2));
    let said = String::from_utf8(direct.stderr).unwrap();
    assert!(
        said.contains("no Redis is set") && said.contains("--server"),
        "{said}"
    );

    let reset = lockout_command(&[("LOCKOUT_ADMIN_TOKEN", "t0ken")])
        .args(["--server", &server, "axes_reset_ip", "203.0.113.7"])
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8(reset.stdout).unwrap(),
        "1 attempts removed.\n",
        "{}",
        String::from_utf8_lossy(&reset.stderr)
    );
    assert_eq!(
        post(&client, &check, attempt).await,
        (StatusCode::OK, json!({"locked": false}))
    );

    let log = String::from_utf8(serving.terminate().stderr).unwrap();
    assert!(
        log.contains("in-process store: this process alone, its state lost on restart"),
        "{log}"
    );
}
