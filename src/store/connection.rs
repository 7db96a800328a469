//! One connection to a server (or the primary Sentinels name) or to a Redis Cluster, so that the
//! store has one code path for all. A batch of commands takes one round-trip time either way: one
//! pipeline on a server; on a cluster every command at once, each routed to its slot's node.
//!
//! No command is sent twice after its connection failed: it may have run, and a failure
//! counted twice locks a user out early. redis-rs' cluster client re-sends such commands, so it
//! runs with no retries of its own, and this module re-sends only what Redis answered it did
//! not run: a redirect (MOVED, ASK) or a "not now" (TRYAGAIN, CLUSTERDOWN, LOADING, READONLY...).

use std::sync::Arc;
use std::time::Duration;

use futures_util::future::join_all;
use redis::cluster_async::ClusterConnection;
use redis::cluster_routing::{RoutingInfo, SingleNodeRoutingInfo};
use redis::{Cmd, ErrorKind, RedisError, RedisResult, ServerErrorKind, Value};

use super::endpoint::{RedisEndpoint, Topology};
use super::primary::{Locate, Primary};

/// How often a command that Redis did not run is sent again, at most.
const RESENDS: u32 = 8;

/// The first pause before sending again a command that a cluster could not run yet; it
/// doubles with each try, up to `MAX_PAUSE`.
const FIRST_PAUSE: Duration = Duration::from_millis(10);
const MAX_PAUSE: Duration = Duration::from_millis(200);

/// A node to walk with SCAN: the server itself, or one primary of the cluster.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Node {
    Server,
    Primary { host: String, port: u16 },
}

#[derive(Clone)]
pub(crate) enum Connection {
    /// A server, or the primary of a Sentinel group.
    Primary(Arc<Primary>),
    Cluster(ClusterConnection),
}

impl Connection {
    /// A primary is connected on first use and looked up again after a failure, so `open`
    /// does not fail when it is down; a cluster connection needs a seed node now.
    pub(crate) async fn open(
        endpoint: &RedisEndpoint,
        connect_timeout: Duration,
        command_timeout: Duration,
    ) -> RedisResult<Self> {
        let locate = match endpoint.topology() {
            Topology::Server(url) => Locate::Address(endpoint.client(url)?),
            Topology::Sentinel {
                sentinels,
                master,
                node_url,
            } => Locate::Sentinel(tokio::sync::Mutex::new(
                endpoint.sentinel_client(sentinels, master, node_url)?,
            )),
            Topology::Cluster(seeds) => {
                let client = endpoint
                    .cluster_builder(seeds)
                    .connection_timeout(connect_timeout)
                    .response_timeout(command_timeout)
                    .retries(0)
                    .build()?;
                return Ok(Connection::Cluster(client.get_async_connection().await?));
            }
        };
        Ok(Connection::Primary(Arc::new(Primary::new(
            locate,
            connect_timeout,
            command_timeout,
        ))))
    }

    /// Each command's reply, in order; `Err` only when the round trip itself failed.
    pub(crate) async fn send(&self, commands: &[Cmd]) -> RedisResult<Vec<RedisResult<Value>>> {
        match self {
            Connection::Primary(primary) => {
                let used = primary.connection().await?;
                let replies = pipeline(&mut used.connection.clone(), commands).await;
                match &replies {
                    Err(err) => primary.after(&used, err),
                    Ok(replies) => {
                        for err in replies.iter().filter_map(|reply| reply.as_ref().err()) {
                            primary.after(&used, err);
                        }
                    }
                }
                replies
            }
            Connection::Cluster(connection) => Ok(join_all(
                commands
                    .iter()
                    .map(|command| run_in_cluster(connection, command)),
            )
            .await),
        }
    }

    /// Runs a command that names no key (SCRIPT LOAD) on the server, or on every node.
    pub(crate) async fn everywhere(&self, command: &Cmd) -> RedisResult<()> {
        self.query(command).await.map(drop)
    }

    /// Runs one command, routed by redis-rs: a multi-key command such as UNLINK is split by
    /// slot on a cluster, and sent again whole if a slot did not run it, so it must be one
    /// that can run twice.
    pub(crate) async fn query(&self, command: &Cmd) -> RedisResult<Value> {
        match self {
            Connection::Primary(primary) => {
                let used = primary.connection().await?;
                let reply = command.query_async(&mut used.connection.clone()).await;
                if let Err(err) = &reply {
                    primary.after(&used, err);
                }
                reply
            }
            Connection::Cluster(connection) => {
                let mut sent = 0;
                loop {
                    let result = command.query_async(&mut connection.clone()).await;
                    match result {
                        Err(err) if sent < RESENDS && Resend::after(&err).is_some() => {
                            tokio::time::sleep(pause(sent)).await;
                            sent += 1;
                        }
                        result => return result,
                    }
                }
            }
        }
    }

    /// The primaries reached, `host:port`: the server, the Sentinels' primary, or every primary
    /// of the cluster.
    pub(crate) async fn primaries(&self) -> RedisResult<Vec<String>> {
        match self {
            Connection::Primary(primary) => {
                Ok(vec![primary.connection().await?.address.to_string()])
            }
            Connection::Cluster(_) => Ok(self
                .nodes()
                .await?
                .into_iter()
                .filter_map(|node| match node {
                    Node::Primary { host, port } => Some(format!("{host}:{port}")),
                    Node::Server => None,
                })
                .collect()),
        }
    }

    /// The nodes whose keys together are all the keys: the server, or every primary.
    pub(crate) async fn nodes(&self) -> RedisResult<Vec<Node>> {
        let Connection::Cluster(connection) = self else {
            return Ok(vec![Node::Server]);
        };
        let mut command = redis::cmd("CLUSTER");
        command.arg("NODES");
        let text: String = redis::from_redis_value(
            connection
                .clone()
                .route_command(
                    command,
                    RoutingInfo::SingleNode(SingleNodeRoutingInfo::Random),
                )
                .await?,
        )?;
        Ok(primaries(&text))
    }

    /// Runs `command` on one node (SCAN walks one node's keys).
    pub(crate) async fn on_node(&self, node: &Node, command: &Cmd) -> RedisResult<Value> {
        match (self, node) {
            (Connection::Cluster(connection), Node::Primary { host, port }) => {
                let routing = RoutingInfo::SingleNode(SingleNodeRoutingInfo::ByAddress {
                    host: host.clone(),
                    port: *port,
                });
                connection
                    .clone()
                    .route_command(command.clone(), routing)
                    .await
            }
            _ => self.query(command).await,
        }
    }
}

/// `commands` as one pipeline, each reply kept (an error reply does not fail the others).
async fn pipeline(
    connection: &mut impl redis::aio::ConnectionLike,
    commands: &[Cmd],
) -> RedisResult<Vec<RedisResult<Value>>> {
    let mut pipe = redis::pipe();
    pipe.ignore_errors();
    for command in commands {
        pipe.add_command(command.clone());
    }
    pipe.query_async(connection).await
}

/// How to send again a command that Redis answered it did not run.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Resend {
    /// MOVED: to the slot's new owner (redis-rs refreshes its slot map meanwhile).
    To { host: String, port: u16 },
    /// ASK: once, to the node importing the slot, right after ASKING.
    Asking { host: String, port: u16 },
    /// A slot in migration (TRYAGAIN), a failover (CLUSTERDOWN, MASTERDOWN, READONLY), a node
    /// loading its data or not connected yet: routed by slot again, after a pause.
    Later,
}

impl Resend {
    /// `None` when the command may have run: its connection failed or timed out, or Redis ran
    /// it and answered an error.
    fn after(err: &RedisError) -> Option<Resend> {
        let node = || {
            let (address, _slot) = err.redirect_node()?;
            let (host, port) = address.rsplit_once(':')?;
            Some((host.to_string(), port.parse().ok()?))
        };
        match err.kind() {
            ErrorKind::Server(ServerErrorKind::Moved) => {
                Some(node().map_or(Resend::Later, |(host, port)| Resend::To { host, port }))
            }
            ErrorKind::Server(ServerErrorKind::Ask) => {
                Some(node().map_or(Resend::Later, |(host, port)| Resend::Asking { host, port }))
            }
            ErrorKind::Server(
                ServerErrorKind::TryAgain
                | ServerErrorKind::ClusterDown
                | ServerErrorKind::MasterDown
                | ServerErrorKind::BusyLoading
                | ServerErrorKind::ReadOnly,
            )
            | ErrorKind::ClusterConnectionNotFound => Some(Resend::Later),
            _ => None,
        }
    }
}

/// Runs `command` on the node of its key's slot, following redirects (see `Resend`).
async fn run_in_cluster(connection: &ClusterConnection, command: &Cmd) -> RedisResult<Value> {
    let mut resend = Resend::Later;
    let mut sent = 0;
    loop {
        let mut connection = connection.clone();
        let result = match &resend {
            Resend::Later => command.query_async(&mut connection).await,
            Resend::To { host, port } => connection
                .route_command(
                    command.clone(),
                    RoutingInfo::SingleNode(by_address(host, *port)),
                )
                .await
                .and_then(Value::extract_error),
            Resend::Asking { host, port } => {
                let mut asking = redis::pipe();
                asking.cmd("ASKING").add_command(command.clone());
                connection
                    .route_pipeline(asking, 1, 1, by_address(host, *port))
                    .await
                    .and_then(|replies| {
                        replies.into_iter().next().ok_or_else(|| {
                            RedisError::from((ErrorKind::Client, "no reply after ASKING"))
                        })
                    })
                    .and_then(Value::extract_error)
            }
        };
        let Err(err) = &result else {
            return result;
        };
        match Resend::after(err) {
            Some(next) if sent < RESENDS => {
                if next == Resend::Later {
                    tokio::time::sleep(pause(sent)).await;
                }
                resend = next;
                sent += 1;
            }
            _ => return result,
        }
    }
}

fn by_address(host: &str, port: u16) -> SingleNodeRoutingInfo {
    SingleNodeRoutingInfo::ByAddress {
        host: host.to_string(),
        port,
    }
}

/// The pause before the `sent`-th resend of a command the cluster could not run yet.
fn pause(sent: u32) -> Duration {
    FIRST_PAUSE.saturating_mul(1 << sent.min(8)).min(MAX_PAUSE)
}

/// The reachable primaries in a CLUSTER NODES answer:
/// `<id> <ip:port@cport[,hostname]> <flags> <primary> ...`, flags such as `myself,master`.
fn primaries(cluster_nodes: &str) -> Vec<Node> {
    cluster_nodes
        .lines()
        .filter_map(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            let flags: Vec<&str> = fields.get(2)?.split(',').collect();
            if !flags.contains(&"master")
                || flags
                    .iter()
                    .any(|f| f.starts_with("fail") || *f == "noaddr")
            {
                return None;
            }
            let address = fields.get(1)?.split(['@', ',']).next()?;
            let (host, port) = address.rsplit_once(':')?;
            Some(Node::Primary {
                host: host.to_string(),
                port: port.parse().ok()?,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn primaries_are_read_from_cluster_nodes() {
        let text = "\
a1 127.0.0.1:7001@17001 myself,master - 0 0 1 connected 0-5460
b2 127.0.0.1:7002@17002 master - 0 0 2 connected 5461-10922
c3 127.0.0.1:7003@17003 master,fail - 0 0 3 connected
d4 127.0.0.1:7004@17004 slave a1 0 0 1 connected
e5 127.0.0.1:7005@17005,node-5 master - 0 0 4 connected 10923-16383";
        let ports: Vec<u16> = primaries(text)
            .into_iter()
            .map(|node| match node {
                Node::Primary { port, .. } => port,
                Node::Server => 0,
            })
            .collect();
        assert_eq!(ports, [7001, 7002, 7005]);
    }
}
