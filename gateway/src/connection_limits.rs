//! What a listener allows one connection: its open connections are capped globally and per
//! source IP address, its clients have a deadline for their request headers, and its writes
//! a minimum rate ([`PacedWrites`]). A connection over a cap is answered with a canned 503
//! SlowDown (when the socket takes it at once) and closed: the accept loop never waits for
//! a slot, so a flood from one address cannot hold up accepts for everyone else.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use tokio::net::TcpStream;

use crate::config::LimitsConfig;
use crate::metrics::Metrics;
use crate::min_rate::MinRate;
use crate::paced_io::PacedWrites;

/// An accepted connection's hold on its slot (none on a listener without caps): the slot is
/// freed when it is dropped.
pub struct Admitted {
    _slot: Option<ConnectionSlot>,
}

/// The bounds of one listener.
pub struct ListenerLimits {
    /// `None`: connections are not capped (the admin listener, reached by operators).
    caps: Option<ConnectionCaps>,
    pub header_timeout: Duration,
    response_min_rate: MinRate,
    metrics: Arc<Metrics>,
}

impl ListenerLimits {
    /// The S3 listener: every bound of `[limits]`.
    pub fn s3(limits: &LimitsConfig, metrics: Arc<Metrics>) -> Self {
        Self {
            caps: Some(ConnectionCaps::new(
                limits.max_connections,
                limits.max_connections_per_address,
            )),
            header_timeout: limits.header_timeout,
            response_min_rate: limits.response_min_rate,
            metrics,
        }
    }

    /// The admin listener: deadlines, no caps.
    pub fn admin(limits: &LimitsConfig, metrics: Arc<Metrics>) -> Self {
        Self {
            caps: None,
            ..Self::s3(limits, metrics)
        }
    }

    /// A slot for the connection just accepted from `peer`, or `None` when it is over a cap:
    /// it is then answered with 503 SlowDown if its socket takes it at once, and counted.
    pub fn admit(&self, stream: &TcpStream, peer: SocketAddr) -> Option<Admitted> {
        let Some(caps) = &self.caps else {
            return Some(Admitted { _slot: None });
        };
        match caps.open(peer.ip()) {
            Ok(slot) => Some(Admitted { _slot: Some(slot) }),
            Err(over) => {
                self.metrics.reject("connections");
                tracing::debug!(%peer, ?over, "connection refused over a cap");
                let _ = stream.try_write(OVER_CAP_RESPONSE);
                None
            }
        }
    }

    /// The stream with its writes held to the minimum response rate.
    pub fn pace(&self, stream: TcpStream) -> PacedWrites<TcpStream> {
        PacedWrites::new(stream, self.response_min_rate, self.metrics.clone())
    }
}

pub struct ConnectionCaps {
    max: usize,
    per_address: usize,
    open: Arc<Mutex<Open>>,
}

#[derive(Default)]
struct Open {
    total: usize,
    /// Removed when an address's count falls to zero: at most `max` entries.
    by_address: HashMap<IpAddr, usize>,
}

/// Which cap refused a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OverCap {
    Global,
    Address,
}

/// One open connection; its slot is freed when dropped.
pub struct ConnectionSlot {
    open: Arc<Mutex<Open>>,
    address: IpAddr,
}

/// Sent, best effort and without waiting, to a connection over a cap before it is closed.
pub const OVER_CAP_RESPONSE: &[u8] = b"HTTP/1.1 503 Service Unavailable\r\n\
Content-Type: application/xml\r\nConnection: close\r\nContent-Length: 126\r\n\r\n\
<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n\
<Error><Code>SlowDown</Code><Message>Please reduce your request rate.</Message></Error>";

impl ConnectionCaps {
    pub fn new(max: usize, per_address: usize) -> Self {
        Self {
            max,
            per_address,
            open: Arc::default(),
        }
    }

    /// A slot for a new connection from `address`, or the cap it would exceed.
    pub fn open(&self, address: IpAddr) -> Result<ConnectionSlot, OverCap> {
        let mut open = self.open.lock().unwrap_or_else(PoisonError::into_inner);
        if open.total >= self.max {
            return Err(OverCap::Global);
        }
        let from_address = open.by_address.entry(address).or_insert(0);
        if *from_address >= self.per_address {
            return Err(OverCap::Address);
        }
        *from_address += 1;
        open.total += 1;
        Ok(ConnectionSlot {
            open: self.open.clone(),
            address,
        })
    }
}

impl Drop for ConnectionSlot {
    fn drop(&mut self) {
        let mut open = self.open.lock().unwrap_or_else(PoisonError::into_inner);
        open.total = open.total.saturating_sub(1);
        if let Some(count) = open.by_address.get_mut(&self.address) {
            *count = count.saturating_sub(1);
            if *count == 0 {
                open.by_address.remove(&self.address);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(last: u8) -> IpAddr {
        IpAddr::from([192, 0, 2, last])
    }

    #[test]
    fn one_address_cannot_take_every_slot() {
        let caps = ConnectionCaps::new(5, 2);
        let a: Vec<_> = (0..2).map(|_| caps.open(ip(1))).collect();
        assert!(a.iter().all(Result::is_ok));
        assert_eq!(caps.open(ip(1)).err(), Some(OverCap::Address));
        // Another address still gets in.
        assert!(caps.open(ip(2)).is_ok());
        drop(a);
        assert!(caps.open(ip(1)).is_ok());
    }

    #[test]
    fn the_global_cap_holds_across_addresses_and_frees_on_drop() {
        let caps = ConnectionCaps::new(3, 3);
        let held: Vec<_> = (1..=3).map(|i| caps.open(ip(i))).collect();
        assert!(held.iter().all(Result::is_ok));
        assert_eq!(caps.open(ip(9)).err(), Some(OverCap::Global));
        drop(held);
        assert!(caps.open(ip(9)).is_ok());
        let open = caps.open.lock().unwrap_or_else(PoisonError::into_inner);
        assert_eq!(open.total, 0);
        assert!(
            open.by_address.is_empty(),
            "addresses at zero are forgotten"
        );
    }

    #[test]
    fn the_canned_answer_declares_its_length() {
        let text = std::str::from_utf8(OVER_CAP_RESPONSE).unwrap_or_default();
        let (head, body) = text.split_once("\r\n\r\n").unwrap_or_default();
        assert!(
            head.contains(&format!("Content-Length: {}", body.len())),
            "{head}"
        );
    }
}
