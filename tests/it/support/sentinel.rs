//! A Sentinel deployment: a primary `redis-server`, its replica, and three Sentinels watching
//! them (quorum 2), all throwaway processes on free loopback ports, killed with the fixture;
//! plain, or all over TLS.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use super::tls::TestCertificates;
use super::RedisServer;

/// The name the Sentinels know the primary by.
pub const MASTER: &str = "lockout-primary";

/// How long `start` and `failover` wait for every process to agree.
const SETTLING: Duration = Duration::from_secs(30);

/// Ask for failovers through `failover()`: it asks the first Sentinel, the only one that
/// publishes its configuration often (see `launch`); another Sentinel's failover could be undone.
pub struct SentinelGroup {
    /// Killed first, so that none acts on the servers going away.
    sentinels: Vec<RedisServer>,
    /// The first primary and its replica, whichever is primary now.
    servers: [RedisServer; 2],
}

impl SentinelGroup {
    /// Returns when every Sentinel knows the primary, the replica and the two other Sentinels,
    /// and the replica is in sync.
    pub fn start() -> Self {
        Self::launch(Options::default())
    }

    /// Like `start`, the primary and replica asking for `password` (`--requirepass`, and
    /// `--masterauth` for the replica's link); the Sentinels ask for none. The servers' `url()`
    /// holds the password.
    pub fn start_with_password(password: &str) -> Self {
        Self::launch(Options {
            password: Some(password),
            ..Options::default()
        })
    }

    /// Like `start`, every process TLS-only (`--port 0 --tls-port P`) with `certs`' server
    /// certificate, client certificates optional: the replica syncs, and the Sentinels talk to
    /// the servers and to each other, over TLS, presenting the client certificate.
    /// `sentinel_urls()` and the servers' `url()` are `rediss://`; the fixture's own connections
    /// present the client certificate and trust `certs.ca`.
    pub fn start_tls(certs: &TestCertificates) -> Self {
        Self::launch(Options {
            tls: Some(certs),
            ..Options::default()
        })
    }

    fn launch(options: Options) -> Self {
        let Options { password, tls } = options;
        // What every process of the group runs with: plain, or TLS-only and replicating over
        // TLS (for a Sentinel: its links to the servers and to the other Sentinels).
        let base = || {
            tls.map(TestCertificates::replicating_server)
                .unwrap_or_default()
        };
        let data_node = |extra: &[&str]| {
            let mut setup = base();
            // A replica syncs (and a failed-over primary resyncs) at once.
            setup
                .extra
                .extend(["--repl-diskless-sync-delay", "0"].map(String::from));
            setup.extra.extend(extra.iter().map(|arg| arg.to_string()));
            if let Some(password) = password {
                setup.extra.extend(
                    ["--requirepass", password, "--masterauth", password].map(String::from),
                );
                setup.password = Some(password.to_string());
            }
            RedisServer::launch(setup)
        };
        let primary = data_node(&[]);
        let replica = data_node(&["--replicaof", "127.0.0.1", &primary.port.to_string()]);
        let mut config = format!(
            "sentinel monitor {MASTER} 127.0.0.1 {} 2\n\
             sentinel down-after-milliseconds {MASTER} 1000\n\
             sentinel failover-timeout {MASTER} 10000\n",
            primary.port
        );
        if let Some(password) = password {
            // Quoted as Redis reads quoted strings: "\"", "\\".
            config.push_str(&format!("sentinel auth-pass {MASTER} {password:?}\n"));
        }
        let sentinels: Vec<RedisServer> = (0..3)
            .map(|_| {
                let mut setup = base();
                setup.extra.push("--sentinel".to_string());
                setup.config = Some(("sentinel.conf", config.clone()));
                RedisServer::launch(setup)
            })
            .collect();
        for (index, sentinel) in sentinels.iter().enumerate() {
            let mut periods = redis::cmd("SENTINEL");
            periods.arg("DEBUG");
            // INFO every 250 ms (10 s by default), not less: a Sentinel fails over only to a
            // replica it heard from within 3 INFO periods, and saving its configuration on a
            // slow disk held one up for 300 ms (with 100 ms, 1 failover in 14 was given up).
            // Pings stay at 1 s: once a primary is down, a Sentinel asks replicas for INFO
            // every second whatever the period, and fails over only to one it heard from
            // within 5 ping periods.
            for (name, milliseconds) in [
                ("info-period", 250),
                ("ask-period", 100),
                ("tilt-period", 1000),
            ] {
                periods.arg(name).arg(milliseconds);
            }
            // A Sentinel that sees a replica turned primary puts it back under the primary it
            // knows unless news of the failover came within 4 of its publish periods. The
            // Sentinel asked to fail over publishes the news every 200 ms (and turns the old
            // primary into a replica 800 ms after); the others keep 2 s (8 s before they would
            // undo a promotion): with 200 ms everywhere, they undid one when the news came
            // later than 800 ms.
            if index == 0 {
                periods.arg("publish-period").arg(200);
            }
            periods.query::<()>(&mut sentinel.connection()).unwrap();
        }
        let group = SentinelGroup {
            sentinels,
            servers: [primary, replica],
        };
        let (primary, replica) = (group.servers[0].port, group.servers[1].port);
        group.wait_until_settled(primary, replica, Instant::now() + SETTLING, |_| {});
        group
    }

    /// `redis://127.0.0.1:port` of each Sentinel (`rediss://` for a group started with
    /// `start_tls`).
    pub fn sentinel_urls(&self) -> Vec<String> {
        self.sentinels.iter().map(RedisServer::url).collect()
    }

    /// The primary's port, as a Sentinel says.
    pub fn primary_port(&self) -> u16 {
        let (_host, port): (String, u16) = redis::cmd("SENTINEL")
            .arg("GET-MASTER-ADDR-BY-NAME")
            .arg(MASTER)
            .query(&mut self.sentinels[0].connection())
            .unwrap();
        port
    }

    /// The primary or the replica listening on `port`.
    pub fn server(&self, port: u16) -> &RedisServer {
        self.servers
            .iter()
            .find(|server| server.port == port)
            .unwrap_or_else(|| panic!("no server of the group on port {port}"))
    }

    /// Makes the replica the primary (`SENTINEL FAILOVER`) and waits until every Sentinel
    /// agrees, the new primary answers as one and the old one is its replica, in sync. Answers
    /// the new primary's port.
    pub fn failover(&self) -> u16 {
        let old = self.primary_port();
        let new = self
            .servers
            .iter()
            .map(|server| server.port)
            .find(|&port| port != old)
            .unwrap();
        let deadline = Instant::now() + SETTLING;
        self.ask_failover(deadline);
        self.wait_until_settled(new, old, deadline, |views| {
            // The Sentinel gave up (`-failover-abort-no-good-slave`: its news of the replica was
            // too old when it chose): the flag it set on accepting the request is gone while
            // the old primary remains. Asked again.
            let leader = &views[0].master;
            let port = old.to_string();
            if leader.get("flags").map(String::as_str) == Some("master")
                && leader.get("port") == Some(&port)
            {
                self.ask_failover(deadline);
            }
        });
        new
    }

    /// `SENTINEL FAILOVER` to the first Sentinel, asked again while it has no recent news of the
    /// replica (`NOGOODSLAVE`).
    fn ask_failover(&self, deadline: Instant) {
        loop {
            let asked = redis::cmd("SENTINEL")
                .arg("FAILOVER")
                .arg(MASTER)
                .query::<()>(&mut self.sentinels[0].connection());
            match asked {
                Ok(()) => return,
                Err(error) if error.code() == Some("NOGOODSLAVE") && Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(20));
                }
                Err(error) => panic!("SENTINEL FAILOVER {MASTER}: {error}"),
            }
        }
    }

    /// Polls until the processes agree that `primary` is the primary and `replica` its
    /// replica, in sync, showing `poll` what the Sentinels say each time; panics with what they
    /// say after `deadline`.
    fn wait_until_settled(
        &self,
        primary: u16,
        replica: u16,
        deadline: Instant,
        mut poll: impl FnMut(&[View]),
    ) {
        loop {
            let views: Vec<View> = self.sentinels.iter().map(View::of).collect();
            poll(&views);
            let agreed = views.iter().all(|view| view.settled(primary, replica));
            let role: redis::RedisResult<Vec<redis::Value>> =
                ask(self.server(primary), &redis::cmd("ROLE"));
            let master = redis::Value::BulkString(b"master".to_vec());
            let is_primary = matches!(&role, Ok(role) if role.first() == Some(&master));
            let replication: redis::RedisResult<String> =
                ask(self.server(replica), redis::cmd("INFO").arg("replication"));
            let in_sync = matches!(&replication, Ok(replication) if
                replication.contains("role:slave")
                && replication.contains(&format!("master_port:{primary}\r\n"))
                && replication.contains("master_link_status:up"));
            if agreed && is_primary && in_sync {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "not settled on primary {primary} with replica {replica} within {SETTLING:?}: \
                 ROLE {role:?}, replica: {replication:?}\nSentinels: {views:#?}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

/// How `launch` starts a group.
#[derive(Default)]
struct Options<'a> {
    /// The primary and replica ask for it (`--requirepass`, `--masterauth`).
    password: Option<&'a str>,
    /// Every process TLS-only, with these certificates.
    tls: Option<&'a TestCertificates>,
}

/// `command`'s answer from `server`, or why none: a Sentinel reconfiguring a server (REPLICAOF)
/// closes the connections of its clients, in the middle of a handshake too.
fn ask<T: redis::FromRedisValue>(
    server: &RedisServer,
    command: &redis::Cmd,
) -> redis::RedisResult<T> {
    command.query(&mut server.client().get_connection()?)
}

/// What one Sentinel says of the master, its replicas and the other Sentinels.
#[derive(Debug)]
struct View {
    master: HashMap<String, String>,
    replicas: Vec<HashMap<String, String>>,
    sentinels: Vec<HashMap<String, String>>,
}

impl View {
    fn of(sentinel: &RedisServer) -> Self {
        let mut connection = sentinel.connection();
        let mut tables = |what: &str| -> Vec<HashMap<String, String>> {
            let answer: redis::Value = redis::cmd("SENTINEL")
                .arg(what)
                .arg(MASTER)
                .query(&mut connection)
                .unwrap();
            let tables = match what {
                "MASTER" => vec![answer],
                _ => redis::from_redis_value(answer).unwrap(),
            };
            tables.into_iter().map(fields).collect()
        };
        View {
            master: tables("MASTER").pop().unwrap(),
            replicas: tables("REPLICAS"),
            sentinels: tables("SENTINELS"),
        }
    }

    /// Whether it is done with any failover, names `primary` the master, knows `replica` as
    /// its replica in sync, and knows the two other Sentinels.
    fn settled(&self, primary: u16, replica: u16) -> bool {
        let is = |table: &HashMap<String, String>, key: &str, value: &str| {
            table.get(key).map(String::as_str) == Some(value)
        };
        let (primary, replica) = (primary.to_string(), replica.to_string());
        is(&self.master, "port", &primary)
            && is(&self.master, "flags", "master")
            && self.replicas.iter().any(|table| {
                is(table, "port", &replica)
                    && is(table, "flags", "slave")
                    && is(table, "role-reported", "slave")
                    && is(table, "master-port", &primary)
                    && is(table, "master-link-status", "ok")
            })
            && self.sentinels.len() == 2
            && self
                .sentinels
                .iter()
                .all(|table| is(table, "flags", "sentinel"))
    }
}

/// A Sentinel's table, `[key, value, key, value, ...]`, as a map.
fn fields(table: redis::Value) -> HashMap<String, String> {
    let flat: Vec<String> = redis::from_redis_value(table).unwrap();
    flat.chunks(2)
        .map(|pair| (pair[0].clone(), pair[1].clone()))
        .collect()
}
