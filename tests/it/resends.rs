//! A failure whose reply was lost on the way back is never sent again: Redis ran it, and a
//! resend would count it twice. The connection is cut by a proxy right after Redis answered,
//! on one server and on a cluster (whose client, redis-rs, re-sends by default).

use std::time::Duration;

use lockout::keys::Keyspace;
use lockout::{Attempt, Engine, Policy, RedisEndpoint, RedisOptions, RedisStore, Target};
use tokio::net::TcpListener;

use crate::proxy::Proxy;
use crate::support::{eventually, policy, RedisServer};

async fn engine(endpoint: RedisEndpoint) -> Engine<RedisStore> {
    let store = RedisStore::connect(
        &endpoint,
        Keyspace::new("lockout").unwrap(),
        RedisOptions::default(),
    )
    .await
    .unwrap();
    Engine::new(
        store,
        Policy {
            access_log: None,
            ..policy(100, &[&["ip"]])
        },
    )
}

/// Two failures, the second one's reply cut: it is reported as an error, and counted once.
async fn a_lost_reply_is_reported_not_resent(engine: Engine<RedisStore>, proxy: &Proxy) {
    let attempt = Attempt::parse("10.0.0.1", None, None, None).unwrap();
    engine.fail(&attempt).await.expect("the first failure");
    proxy.cut_reply_to("EVALSHA");
    let cut = engine.fail(&attempt).await;
    assert_eq!(proxy.cuts(), 1, "the proxy cut the reply");
    assert!(cut.is_err(), "a failure without its reply: {cut:?}");

    let mut failures = Vec::new();
    eventually(
        Duration::from_secs(5),
        "the store answers again",
        async || match engine.list(&Target::All, false).await {
            Ok(records) => {
                failures = records.iter().map(|record| record.failures).collect();
                true
            }
            Err(_) => false,
        },
    )
    .await;
    assert_eq!(failures, [2], "each failure counted once, none twice");
}

#[tokio::test]
async fn on_a_server() {
    let server = RedisServer::start();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let proxy = Proxy::start(listener, server.port()).await;
    let endpoint = RedisEndpoint::server(format!("redis://127.0.0.1:{}", proxy.port));
    a_lost_reply_is_reported_not_resent(engine(endpoint).await, &proxy).await;
}

/// A one-node cluster that announces the proxy's address, so that redis-rs' node connections
/// (made from CLUSTER SLOTS) go through the proxy too.
#[tokio::test]
async fn on_a_cluster() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let announced = listener.local_addr().unwrap().port().to_string();
    let node = RedisServer::start_with(&[
        "--cluster-enabled",
        "yes",
        "--cluster-config-file",
        "nodes.conf",
        "--cluster-announce-ip",
        "127.0.0.1",
        "--cluster-announce-port",
        &announced,
    ]);
    let () = redis::cmd("CLUSTER")
        .arg("ADDSLOTSRANGE")
        .arg(0)
        .arg(16383)
        .query(&mut node.connection())
        .unwrap();
    eventually(Duration::from_secs(10), "cluster_state:ok", async || {
        let info: String = redis::cmd("CLUSTER")
            .arg("INFO")
            .query(&mut node.connection())
            .unwrap();
        info.contains("cluster_state:ok")
    })
    .await;
    let proxy = Proxy::start(listener, node.port()).await;
    let endpoint = RedisEndpoint::cluster(vec![format!("redis://127.0.0.1:{}", proxy.port)]);
    a_lost_reply_is_reported_not_resent(engine(endpoint).await, &proxy).await;
}
