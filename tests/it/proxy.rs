//! A TCP proxy in front of a Redis, for what a network does to connections: it can cut a
//! connection right after Redis answered a command (the command ran, its client never hears of
//! it), send new connections to another server (a DNS name moved by a failover), and cut its
//! clients off from Redis altogether for a while (a network partition).

use std::sync::atomic::{AtomicU16, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// A TCP proxy to a Redis on loopback. Connections stay on the server they were made to.
pub struct Proxy {
    pub port: u16,
    upstream: Arc<AtomicU16>,
    marker: Arc<Mutex<Option<Vec<u8>>>>,
    cuts: Arc<AtomicUsize>,
    /// True while clients are cut off (see `sever`).
    severed: watch::Sender<bool>,
    accepting: JoinHandle<()>,
}

impl Proxy {
    /// Accepts on `listener` (bound before, when its port must be known first) and forwards
    /// to the server on port `upstream`.
    pub async fn start(listener: TcpListener, upstream: u16) -> Self {
        let port = listener.local_addr().unwrap().port();
        let upstream = Arc::new(AtomicU16::new(upstream));
        let marker: Arc<Mutex<Option<Vec<u8>>>> = Arc::default();
        let cuts: Arc<AtomicUsize> = Arc::default();
        let severed = watch::Sender::new(false);
        let accepting = tokio::spawn({
            let (upstream, marker, cuts) = (upstream.clone(), marker.clone(), cuts.clone());
            let severed = severed.clone();
            async move {
                while let Ok((client, _)) = listener.accept().await {
                    if *severed.borrow() {
                        continue;
                    }
                    let port = upstream.load(Ordering::SeqCst);
                    let Ok(server) = TcpStream::connect(("127.0.0.1", port)).await else {
                        continue;
                    };
                    let relay = relay(client, server, marker.clone(), cuts.clone());
                    let mut cut_off = severed.subscribe();
                    tokio::spawn(async move {
                        tokio::select! {
                            _ = relay => {}
                            _ = cut_off.wait_for(|severed| *severed) => {}
                        }
                    });
                }
            }
        });
        Proxy {
            port,
            upstream,
            marker,
            cuts,
            severed,
            accepting,
        }
    }

    /// New connections go to the server on `port`.
    pub fn send_to(&self, port: u16) {
        self.upstream.store(port, Ordering::SeqCst);
    }

    /// Closes the connection in place of forwarding the reply to the next command that
    /// contains `marker`.
    pub fn cut_reply_to(&self, marker: &str) {
        *self.marker.lock().unwrap() = Some(marker.as_bytes().to_vec());
    }

    /// Closes every connection, and each new one at once, until `mend`.
    pub fn sever(&self) {
        self.severed.send_replace(true);
    }

    /// Lets connections through again.
    pub fn mend(&self) {
        self.severed.send_replace(false);
    }

    /// How many replies were cut.
    pub fn cuts(&self) -> usize {
        self.cuts.load(Ordering::SeqCst)
    }
}

impl Drop for Proxy {
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
