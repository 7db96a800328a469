//! A failure whose reply was lost on the way back is never sent again: Redis ran it, and a
//! resend would count it twice. The connection is cut by a proxy right after Redis answered,
//! on one server and on a cluster (whose client, redis-rs, re-sends by default).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use lockout::keys::Keyspace;
use lockout::{Attempt, Engine, Policy, RedisEndpoint, RedisOptions, RedisStore, Target};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

use crate::support::{eventually, policy, RedisServer};

/// A TCP proxy to a Redis that, once told, closes the connection in place of forwarding the
/// reply to the next command containing a marker: the command ran, its client never hears of
/// it, as when a network fails at the worst moment.
struct CuttingProxy {
    port: u16,
    marker: Arc<Mutex<Option<Vec<u8>>>>,
    cuts: Arc<AtomicUsize>,
    accepting: JoinHandle<()>,
}

impl CuttingProxy {
    async fn start(listener: TcpListener, upstream: u16) -> Self {
        let port = listener.local_addr().unwrap().port();
        let marker: Arc<Mutex<Option<Vec<u8>>>> = Arc::default();
        let cuts: Arc<AtomicUsize> = Arc::default();
        let accepting = tokio::spawn({
            let (marker, cuts) = (marker.clone(), cuts.clone());
            async move {
                while let Ok((client, _)) = listener.accept().await {
                    let server = TcpStream::connect(("127.0.0.1", upstream)).await.unwrap();
                    tokio::spawn(relay(client, server, marker.clone(), cuts.clone()));
                }
            }
        });
        CuttingProxy {
            port,
            marker,
            cuts,
            accepting,
        }
    }

    fn cut_reply_to(&self, marker: &str) {
        *self.marker.lock().unwrap() = Some(marker.as_bytes().to_vec());
    }

    fn cuts(&self) -> usize {
        self.cuts.load(Ordering::SeqCst)
    }
}

impl Drop for CuttingProxy {
    fn drop(&mut self) {
        self.accepting.abort();
    }
}

/// Forwards both ways until either side closes, or until the reply to a marked command comes.
async fn relay(
    mut client: TcpStream,
    mut server: TcpStream,
    marker: Arc<Mutex<Option<Vec<u8>>>>,
    cuts: Arc<AtomicUsize>,
) {
    let (mut up, mut down) = ([0u8; 16384], [0u8; 16384]);
    let mut cut_next_reply = false;
    loop {
        tokio::select! {
            read = client.read(&mut up) => {
                let Ok(n @ 1..) = read else { return };
                cut_next_reply |= take_if_in(&marker, &up[..n]);
                if server.write_all(&up[..n]).await.is_err() {
                    return;
                }
            }
            read = server.read(&mut down) => {
                let Ok(n @ 1..) = read else { return };
                if cut_next_reply {
                    cuts.fetch_add(1, Ordering::SeqCst);
                    return;
                }
                if client.write_all(&down[..n]).await.is_err() {
                    return;
                }
            }
        }
    }
}

/// Whether the marker is set and in `bytes`; if so, it is unset (one cut per marker).
fn take_if_in(marker: &Mutex<Option<Vec<u8>>>, bytes: &[u8]) -> bool {
    let mut marker = marker.lock().unwrap();
    let found = marker
        .as_deref()
        .is_some_and(|text| bytes.windows(text.len()).any(|window| window == text));
    if found {
        *marker = None;
    }
    found
}

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
async fn a_lost_reply_is_reported_not_resent(engine: Engine<RedisStore>, proxy: &CuttingProxy) {
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
    let proxy = CuttingProxy::start(listener, server.port()).await;
    let endpoint = RedisEndpoint::Server(format!("redis://127.0.0.1:{}", proxy.port));
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
    let proxy = CuttingProxy::start(listener, node.port()).await;
    let endpoint = RedisEndpoint::Cluster(vec![format!("redis://127.0.0.1:{}", proxy.port)]);
    a_lost_reply_is_reported_not_resent(engine(endpoint).await, &proxy).await;
}
