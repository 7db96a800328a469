//! One connection to a standalone Redis or to a Redis Cluster, so that the store has one code
//! path for both. A batch of commands takes one round-trip time either way: one pipeline on a
//! server; on a cluster one pipeline per slot, all slots at once (a cluster pipeline must stay
//! in one slot, and the identities of one attempt live in different slots).

use std::collections::HashMap;
use std::fmt;
use std::time::Duration;

use futures_util::future::try_join_all;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::cluster::ClusterClientBuilder;
use redis::cluster_async::ClusterConnection;
use redis::cluster_routing::{RoutingInfo, SingleNodeRoutingInfo, Slot};
use redis::{Cmd, RedisResult, Value};

use crate::error::RedisTarget;

/// Where Redis is. Its URLs may hold a password: `Debug` shows them hidden (see `target`).
#[derive(Clone, PartialEq, Eq)]
pub enum RedisEndpoint {
    /// One server (or a proxy), e.g. `redis://127.0.0.1:6379`.
    Server(String),
    /// Seed nodes of a Redis Cluster.
    Cluster(Vec<String>),
}

impl RedisEndpoint {
    /// The URLs, passwords hidden, for messages and logs.
    pub fn target(&self) -> RedisTarget {
        match self {
            RedisEndpoint::Server(url) => RedisTarget::new(url),
            RedisEndpoint::Cluster(seeds) => RedisTarget::of_all(seeds),
        }
    }
}

impl fmt::Debug for RedisEndpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RedisEndpoint::Server(_) => write!(f, "Server({})", self.target()),
            RedisEndpoint::Cluster(_) => write!(f, "Cluster({})", self.target()),
        }
    }
}

/// A command and the key whose slot it must run in.
#[derive(Debug, Clone)]
pub(crate) struct Request {
    slot: Slot,
    pub(crate) command: Cmd,
}

impl Request {
    pub(crate) fn new(key: &str, command: Cmd) -> Self {
        Request {
            slot: Slot::for_key(key),
            command,
        }
    }
}

/// A node to walk with SCAN: the server itself, or one primary of the cluster.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Node {
    Server,
    Primary { host: String, port: u16 },
}

#[derive(Clone)]
pub(crate) enum Connection {
    Server(ConnectionManager),
    Cluster(ClusterConnection),
}

impl Connection {
    /// A server connection is made on first use and remade after any failure, so `open` does
    /// not fail when the server is down; a cluster connection needs a seed node now.
    pub(crate) async fn open(
        endpoint: &RedisEndpoint,
        connect_timeout: Duration,
        command_timeout: Duration,
    ) -> RedisResult<Self> {
        match endpoint {
            RedisEndpoint::Server(url) => {
                let config = ConnectionManagerConfig::new()
                    .set_connection_timeout(Some(connect_timeout))
                    .set_response_timeout(Some(command_timeout))
                    .set_number_of_retries(1)
                    .set_min_delay(Duration::from_millis(50))
                    .set_max_delay(Duration::from_millis(500));
                let client = redis::Client::open(url.as_str())?;
                Ok(Connection::Server(ConnectionManager::new_lazy_with_config(
                    client, config,
                )?))
            }
            RedisEndpoint::Cluster(seeds) => {
                let client = ClusterClientBuilder::new(seeds.iter().map(String::as_str))
                    .connection_timeout(connect_timeout)
                    .response_timeout(command_timeout)
                    .build()?;
                Ok(Connection::Cluster(client.get_async_connection().await?))
            }
        }
    }

    /// Each request's reply, in order; `Err` only when the round trip itself failed.
    pub(crate) async fn send(&self, requests: &[Request]) -> RedisResult<Vec<RedisResult<Value>>> {
        match self {
            Connection::Server(connection) => {
                let commands: Vec<&Cmd> = requests.iter().map(|r| &r.command).collect();
                pipeline(&mut connection.clone(), &commands).await
            }
            Connection::Cluster(connection) => {
                let mut slots: HashMap<Slot, Vec<usize>> = HashMap::new();
                for (index, request) in requests.iter().enumerate() {
                    slots.entry(request.slot).or_default().push(index);
                }
                let groups = slots.into_values().map(|indices| {
                    let mut connection = connection.clone();
                    async move {
                        let commands: Vec<&Cmd> =
                            indices.iter().map(|&i| &requests[i].command).collect();
                        let replies = pipeline(&mut connection, &commands).await?;
                        Ok::<_, redis::RedisError>(indices.into_iter().zip(replies))
                    }
                });
                let mut replies: Vec<Option<RedisResult<Value>>> =
                    (0..requests.len()).map(|_| None).collect();
                for (index, reply) in try_join_all(groups).await?.into_iter().flatten() {
                    replies[index] = Some(reply);
                }
                Ok(replies
                    .into_iter()
                    .map(|reply| reply.expect("every request is in one slot group"))
                    .collect())
            }
        }
    }

    /// Runs a command that names no key (SCRIPT LOAD) on the server, or on every node.
    pub(crate) async fn everywhere(&self, command: &Cmd) -> RedisResult<()> {
        self.query(command).await.map(drop)
    }

    /// Runs one command, routed by redis-rs: a multi-key command such as UNLINK is split by
    /// slot on a cluster.
    pub(crate) async fn query(&self, command: &Cmd) -> RedisResult<Value> {
        match self {
            Connection::Server(connection) => command.query_async(&mut connection.clone()).await,
            Connection::Cluster(connection) => command.query_async(&mut connection.clone()).await,
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
    commands: &[&Cmd],
) -> RedisResult<Vec<RedisResult<Value>>> {
    let mut pipe = redis::pipe();
    pipe.ignore_errors();
    for command in commands {
        pipe.add_command((*command).clone());
    }
    pipe.query_async(connection).await
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
