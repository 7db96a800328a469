//! The accept loop of `lockout serve`, in mini-redis' shape: at most `max_connections` at once
//! (one more is answered 503 and closed at once: under a flood the service sheds load rather
//! than queueing it), a request's headers must arrive within `header_read_timeout` (a client
//! that trickles them cannot hold a connection forever; hyper also runs it while a kept-alive
//! connection waits idle for its next request), its body within `body_read_timeout` (see
//! `input::read_body_first`), and a shutdown stops accepting, then
//! lets requests in flight finish for at most `drain_timeout`. On a TCP address, or on a Unix
//! socket for a login page on the same host (its clients have no address: admin logins count
//! them as 127.0.0.1).

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::ConnectInfo;
use axum::Router;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, UnixListener};

use crate::config::Listen;
use tokio::sync::Semaphore;
use tower_service::Service;

/// How many connections, how long for headers and for a body, how long to drain.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    pub max_connections: usize,
    pub header_read_timeout: Duration,
    /// Applied by `input::read_body_first`, where the body is read.
    pub body_read_timeout: Duration,
    pub drain_timeout: Duration,
}

/// Answered to a connection over `max_connections`, before closing it.
const BUSY: &[u8] = b"HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\n\
content-length: 55\r\nconnection: close\r\n\r\n{\"error\":\"too many connections: try again in a moment\"}";

/// What `serve` accepts connections on.
pub enum Listener {
    Tcp(TcpListener),
    /// With its path, removed when the service stops.
    Unix(UnixListener, PathBuf),
}

impl From<TcpListener> for Listener {
    fn from(listener: TcpListener) -> Self {
        Listener::Tcp(listener)
    }
}

impl Listener {
    /// Binds `listen`. A Unix socket's file left by a process that is gone is replaced; one
    /// that a process still answers on is an error (`AddrInUse`), as a TCP port in use is.
    pub async fn bind(listen: &Listen) -> std::io::Result<Self> {
        match listen {
            Listen::Tcp(address) => TcpListener::bind(address).await.map(Listener::Tcp),
            Listen::Unix(path) => {
                if tokio::net::UnixStream::connect(path).await.is_ok() {
                    return Err(std::io::Error::new(
                        std::io::ErrorKind::AddrInUse,
                        "a process listens on this socket",
                    ));
                }
                use std::os::unix::fs::FileTypeExt;
                if std::fs::symlink_metadata(path).is_ok_and(|meta| meta.file_type().is_socket()) {
                    std::fs::remove_file(path)?;
                }
                UnixListener::bind(path).map(|listener| Listener::Unix(listener, path.clone()))
            }
        }
    }

    /// Where it listens, as `listen` names it (a TCP port 0 resolved).
    pub fn local_address(&self) -> std::io::Result<Listen> {
        match self {
            Listener::Tcp(listener) => listener.local_addr().map(Listen::Tcp),
            Listener::Unix(_, path) => Ok(Listen::Unix(path.clone())),
        }
    }
}

/// A listener's accepting: a stream, and the peer's address when it has one.
trait Accept {
    type Stream: AsyncRead + AsyncWrite + Unpin + Send + 'static;
    fn accept_one(
        &self,
    ) -> impl Future<Output = std::io::Result<(Self::Stream, Option<SocketAddr>)>> + Send;
}

impl Accept for TcpListener {
    type Stream = tokio::net::TcpStream;
    async fn accept_one(&self) -> std::io::Result<(Self::Stream, Option<SocketAddr>)> {
        self.accept()
            .await
            .map(|(stream, peer)| (stream, Some(peer)))
    }
}

impl Accept for UnixListener {
    type Stream = tokio::net::UnixStream;
    async fn accept_one(&self) -> std::io::Result<(Self::Stream, Option<SocketAddr>)> {
        self.accept().await.map(|(stream, _)| (stream, None))
    }
}

/// Serves `app` on `listener` until `shutdown` completes, then drains (see the module doc).
pub async fn run(
    listener: Listener,
    app: Router,
    limits: Limits,
    shutdown: impl Future<Output = ()>,
) {
    match listener {
        Listener::Tcp(listener) => serve_on(listener, app, limits, shutdown).await,
        Listener::Unix(listener, path) => {
            serve_on(listener, app, limits, shutdown).await;
            if let Err(err) = std::fs::remove_file(&path) {
                tracing::warn!(%err, path = %path.display(), "could not remove the socket file");
            }
        }
    }
}

async fn serve_on<L: Accept>(
    listener: L,
    app: Router,
    limits: Limits,
    shutdown: impl Future<Output = ()>,
) {
    let permits = Arc::new(Semaphore::new(limits.max_connections));
    let graceful = GracefulShutdown::new();
    let mut http = http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout);
    tokio::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept_one() => match accepted {
                Ok(accepted) => accepted,
                Err(err) => {
                    // Out of file descriptors, most likely: let connections close.
                    tracing::warn!(%err, "accepting a connection failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let Ok(permit) = permits.clone().try_acquire_owned() else {
            tokio::spawn(refuse(stream));
            continue;
        };
        let router = app.clone();
        let service = hyper::service::service_fn(move |mut request: hyper::Request<Incoming>| {
            if let Some(peer) = peer {
                request.extensions_mut().insert(ConnectInfo(peer));
            }
            let mut router = router.clone();
            async move { Ok::<_, Infallible>(router.call(request).await.unwrap_or_else(|n| match n {})) }
        });
        let connection = graceful.watch(http.serve_connection(TokioIo::new(stream), service));
        tokio::spawn(async move {
            let _ = connection.await;
            drop(permit);
        });
    }
    drop(listener);
    tokio::select! {
        () = graceful.shutdown() => {}
        () = tokio::time::sleep(limits.drain_timeout) => tracing::warn!(
            "drain deadline of {:?} passed: the connections still open are closed",
            limits.drain_timeout
        ),
    }
}

async fn refuse(mut stream: impl AsyncWrite + Unpin) {
    let _ = stream.write_all(BUSY).await;
    let _ = stream.shutdown().await;
}
