//! Part 4, the HTTP service: its floor (a server that does nothing), `lockout serve` on Redis
//! and on the in-process store, over a Unix socket, on a cluster.

use std::io::Write;
use std::net::IpAddr;
use std::process::Command;
use std::time::Instant;

use crate::flow::{clean, drive, Login, POLICIES};
use crate::meter::{percentile, Meter};
use crate::options::Options;
use crate::peers::Peer;
use crate::processes::{
    free_port, start_cluster, start_service, start_service_on_socket, wait_for_port, Process,
};
use crate::report::{versus_redis, Row};
use crate::Bench;

/// The HTTP service: check, then failure, on one keep-alive HTTP/1.1 connection spoken
/// directly (the request's bytes written, the response read up to its Content-Length), as wrk
/// does: the load generator shares the machine's cores with the service and Redis, so it must
/// take as little of them as it can: 40-44 µs of CPU per login, against 64 for hyper's client
/// connection (a task of its own per connection) and more than the service for reqwest's.
pub(crate) struct HttpLogin<S> {
    stream: S,
    request: Vec<u8>,
    response: Vec<u8>,
}

impl HttpLogin<tokio::net::TcpStream> {
    pub(crate) async fn connect(port: u16) -> Self {
        let stream = tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .unwrap();
        stream.set_nodelay(true).unwrap();
        HttpLogin::over(stream)
    }
}

impl HttpLogin<tokio::net::UnixStream> {
    pub(crate) async fn connect_unix(path: &std::path::Path) -> Self {
        HttpLogin::over(tokio::net::UnixStream::connect(path).await.unwrap())
    }
}

impl<S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static> HttpLogin<S> {
    pub(crate) fn over(stream: S) -> Self {
        HttpLogin {
            stream,
            request: Vec::with_capacity(256),
            response: Vec::with_capacity(1024),
        }
    }

    /// POSTs `body` to `path` and reads the whole answer, which must be a success.
    pub(crate) async fn post(&mut self, path: &str, body: &str) {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        self.request.clear();
        write!(
            self.request,
            "POST {path} HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-type: application/json\r\n\
             content-length: {}\r\n\r\n{body}",
            body.len()
        )
        .unwrap();
        self.stream.write_all(&self.request).await.unwrap();
        self.response.clear();
        loop {
            let read = self.stream.read_buf(&mut self.response).await.unwrap();
            assert!(read > 0, "the service closed the connection");
            let mut headers = [httparse::EMPTY_HEADER; 16];
            let mut response = httparse::Response::new(&mut headers);
            let httparse::Status::Complete(head) = response.parse(&self.response).unwrap() else {
                continue;
            };
            let status = response.code.unwrap();
            assert!((200..300).contains(&status), "{path}: status {status}");
            let length: usize = response
                .headers
                .iter()
                .find(|header| header.name.eq_ignore_ascii_case("content-length"))
                .and_then(|header| std::str::from_utf8(header.value).ok()?.parse().ok())
                .expect("a Content-Length");
            if self.response.len() >= head + length {
                return;
            }
        }
    }
}

impl<S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static> Login
    for HttpLogin<S>
{
    async fn login(&mut self, ip: IpAddr, user: u32) {
        let body = format!(r#"{{"ip":"{ip}","username":"user{user}"}}"#);
        self.post("/v1/check", &body).await;
        self.post("/v1/failure", &body).await;
    }
}

pub(crate) async fn http_flow(options: &Options, port: u16, connections: usize) -> (u64, Vec<u32>) {
    drive(options, connections, || HttpLogin::connect(port)).await
}

/// The argument with which this tool, run again, is the floor HTTP server on a port.
pub(crate) const FLOOR_SERVER: &str = "--floor-server-on";

/// The floor of any HTTP service here: hyper's HTTP/1.1 server on the same runtime as
/// `lockout serve` (tokio, two worker threads), answering every request with a fixed JSON body
/// and doing nothing else. Runs until killed.
pub(crate) async fn floor_server(port: u16) {
    use hyper_util::rt::TokioIo;
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
        .await
        .unwrap();
    loop {
        let (stream, _) = listener.accept().await.unwrap();
        stream.set_nodelay(true).unwrap();
        tokio::spawn(async move {
            let service = hyper::service::service_fn(|_request| async {
                let mut response = hyper::Response::new(String::from(r#"{"locked":false}"#));
                response.headers_mut().insert(
                    hyper::header::CONTENT_TYPE,
                    hyper::header::HeaderValue::from_static("application/json"),
                );
                Ok::<_, std::convert::Infallible>(response)
            });
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

/// The floor server, as a process of its own (this tool run again), and its port.
pub(crate) fn start_floor_server() -> (Process, u16) {
    let port = free_port();
    let child = Command::new(std::env::current_exe().unwrap())
        .args([FLOOR_SERVER, &port.to_string()])
        .spawn()
        .unwrap();
    wait_for_port(port);
    (Process(child, None), port)
}

/// Part 4.
pub(crate) async fn run(bench: &mut Bench, peer: &Peer, rows: &mut Vec<Row>) {
    let reference = bench.reference;
    let (options, reach, redis) = (&bench.options, &bench.reach, &mut bench.redis);
    // 4. The HTTP service, after its floor: the same load on a server that does nothing.
    if options.runs("http") {
        let (floor, floor_port) = start_floor_server();
        let meter = Meter::start(redis, std::process::id(), Some(floor.0.id()));
        let (logins, latencies) = http_flow(options, floor_port, 64).await;
        let what =
            "minimal hyper server, a fixed JSON body, 64 connections (the floor)".to_string();
        let mut floor_row = meter.finish(redis, what, logins, latencies, reference);
        floor_row.ratio = None;
        floor_row.commands_per_login = None;
        let floor_cpu_per_login = floor_row
            .service_cpu
            .zip(floor_row.rate)
            .map(|(cpu, rate)| cpu / rate);
        rows.push(floor_row);
        drop(floor);
        let versus_floor = |row: &mut Row| {
            if let (Some(cpu), Some(rate), Some(floor)) =
                (row.service_cpu, row.rate, floor_cpu_per_login)
            {
                let floor_note = format!(
                    "service CPU per login {:.2}x the floor's",
                    cpu / rate / floor
                );
                row.note = if row.note.is_empty() {
                    floor_note
                } else {
                    format!("{}; {floor_note}", row.note)
                };
            }
        };
        for (name, json) in POLICIES {
            for &connections in &options.connections {
                let (service, http_port) = start_service(&reach.flags.service_env(), json);
                let meter = Meter::start(redis, std::process::id(), Some(service.0.id()));
                let (logins, latencies) = http_flow(options, http_port, connections).await;
                let what = format!("lockout serve, policy {name}, {connections} connections");
                let mut row = meter.finish(redis, what, logins, latencies, reference);
                peer.versus(&mut row);
                versus_floor(&mut row);
                let on_redis = row.rate;
                rows.push(row);
                drop(service);
                clean(reach).await;

                let in_process = [("LOCKOUT_REDIS_URL", "memory://".to_string())];
                let (service, http_port) = start_service(&in_process, json);
                let meter = Meter::start(redis, std::process::id(), Some(service.0.id()));
                let (logins, latencies) = http_flow(options, http_port, connections).await;
                let what = format!(
                    "lockout serve on the in-process store, policy {name}, {connections} connections"
                );
                let row = meter.finish(redis, what, logins, latencies, reference);
                let mut row = versus_redis(row, on_redis);
                versus_floor(&mut row);
                rows.push(row);
                drop(service);
            }
        }
        // A login page on the same host: the same flow over a Unix socket.
        let (name, json) = POLICIES[0];
        let tcp_rate = rows
            .iter()
            .find(|row| row.what == format!("lockout serve, policy {name}, 64 connections"))
            .and_then(|row| row.rate);
        let dir = tempfile::tempdir().unwrap();
        let socket = dir.path().join("lockout.sock");
        let service = start_service_on_socket(&reach.flags.service_env(), json, &socket);
        let meter = Meter::start(redis, std::process::id(), Some(service.0.id()));
        let (logins, latencies) = drive(options, 64, || HttpLogin::connect_unix(&socket)).await;
        let what = format!("lockout serve over a Unix socket, policy {name}, 64 connections");
        let mut row = meter.finish(redis, what, logins, latencies, reference);
        if let (Some(rate), Some(tcp_rate)) = (row.rate, tcp_rate) {
            row.note = format!("{:.2}x the same over TCP", rate / tcp_rate);
        }
        rows.push(row);
        drop(service);
        clean(reach).await;
        if bench.own_redis && !options.tiny {
            let (_cluster, seeds) = start_cluster();
            let (service, http_port) =
                start_service(&[("LOCKOUT_REDIS_CLUSTER", seeds.join(","))], r#"["ip"]"#);
            let started = Instant::now();
            let (logins, mut latencies) = http_flow(options, http_port, 64).await;
            latencies.sort_unstable();
            rows.push(Row {
                what: "lockout serve on a 3-primary cluster, policy ip, 64 connections".into(),
                rate: Some(logins as f64 / started.elapsed().as_secs_f64()),
                unit: "logins/s",
                p50_ms: Some(percentile(&latencies, 0.50)),
                p99_ms: Some(percentile(&latencies, 0.99)),
                p999_ms: Some(percentile(&latencies, 0.999)),
                note: "same machine: the cluster's 3 servers share its cores".into(),
                ..Row::default()
            });
            drop(service);
        }
    }
}
