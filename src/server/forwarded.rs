//! The client of a request behind `trusted_proxies`, from `X-Forwarded-For`: each trusted
//! proxy vouches for the entry it appended, and no further. An entry a trusted proxy should
//! have written that is not an address (garbage, empty, bytes beyond ASCII) leaves the client
//! unknown: the request is refused rather than counted under the proxy's address (which would
//! lock out everyone behind it) or under an entry further left (which the client wrote, so any
//! address it likes).

use std::net::{IpAddr, SocketAddr};

use axum::http::HeaderMap;

use crate::attempt::canonical_ip;
use crate::policy::IpList;

/// Why the client of a request cannot be told: the trusted proxy that should have appended
/// the entry that is not an address (for the log; the caller is not told the address).
#[derive(Debug, PartialEq, Eq)]
pub struct UnknownClient {
    pub proxy: IpAddr,
}

impl UnknownClient {
    /// What the caller is told.
    pub const MESSAGE: &str = "X-Forwarded-For lacks the address a trusted proxy should have \
        appended for its client (an entry is empty or not an IP address): the client cannot \
        be told, so the request is refused";
}

/// The peer, or, when it is a trusted proxy, the nearest entry of `X-Forwarded-For` (all its
/// header lines, in order) that is not one. Without the header, a trusted proxy is the client
/// (a request from its own host).
pub fn client_ip(
    peer: IpAddr,
    headers: &HeaderMap,
    trusted_proxies: &IpList,
) -> Result<IpAddr, UnknownClient> {
    let mut client = canonical_ip(peer);
    if !trusted_proxies.contains(client) {
        return Ok(client);
    }
    // From the right, lazily: the walk stops at the first untrusted entry, however long the
    // header is.
    let hops = headers
        .get_all("x-forwarded-for")
        .iter()
        .rev()
        .flat_map(|value| value.as_bytes().rsplit(|&byte| byte == b','));
    for hop in hops {
        let proxy = client;
        client = address(hop).ok_or(UnknownClient { proxy })?;
        if !trusted_proxies.contains(client) {
            break;
        }
    }
    Ok(client)
}

/// One entry's address: `IP`, or with the port some proxies add (`IPv4:port`, `[IPv6]:port`,
/// `[IPv6]`), between optional spaces; `None` for anything else.
fn address(hop: &[u8]) -> Option<IpAddr> {
    let text = std::str::from_utf8(hop).ok()?.trim_matches([' ', '\t']);
    let ip = text
        .parse::<IpAddr>()
        .or_else(|_| text.parse::<SocketAddr>().map(|socket| socket.ip()))
        .or_else(|_| {
            text.strip_prefix('[')
                .and_then(|rest| rest.strip_suffix(']'))
                .unwrap_or_default()
                .parse::<IpAddr>()
        })
        .ok()?;
    Some(canonical_ip(ip))
}
