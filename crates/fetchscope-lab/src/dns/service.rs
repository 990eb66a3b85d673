//! [`DnsService`]: the lab's [`Zone`] served on a smoltcp UDP socket, port 53.

use smoltcp::iface::{SocketHandle, SocketSet};
use smoltcp::socket::udp;

use super::Zone;
use crate::error::LabError;
use crate::stats::ServerStats;

/// Datagrams the socket buffers in each direction.
const QUEUE_PACKETS: usize = 16;
/// Bytes the socket buffers in each direction (larger datagrams are dropped by smoltcp).
const QUEUE_BYTES: usize = 16 * 1024;

/// The DNS server: one UDP socket on port 53 answering from a [`Zone`].
#[derive(Debug)]
pub(crate) struct DnsService {
    zone: Zone,
    handle: SocketHandle,
}

impl DnsService {
    /// Binds UDP port 53 in `sockets`.
    pub fn new(zone: Zone, sockets: &mut SocketSet<'static>) -> Result<Self, LabError> {
        let buffer = || {
            udp::PacketBuffer::new(
                vec![udp::PacketMetadata::EMPTY; QUEUE_PACKETS],
                vec![0u8; QUEUE_BYTES],
            )
        };
        let mut socket = udp::Socket::new(buffer(), buffer());
        socket.bind(53)?;
        Ok(DnsService {
            zone,
            handle: sockets.add(socket),
        })
    }

    /// The zone being served.
    pub fn zone(&self) -> &Zone {
        &self.zone
    }

    /// Answers the queued queries (at most the socket's buffer of them); true when an
    /// answer was queued for sending.
    pub fn serve(&mut self, sockets: &mut SocketSet<'static>, stats: &mut ServerStats) -> bool {
        let socket = sockets.get_mut::<udp::Socket>(self.handle);
        let mut sent = false;
        for _ in 0..QUEUE_PACKETS {
            let (answer, endpoint) = match socket.recv() {
                Ok((query, meta)) => {
                    stats.dns_queries += 1;
                    (self.zone.answer(query), meta.endpoint)
                }
                Err(_) => break,
            };
            let Some(answer) = answer else {
                stats.dns_ignored += 1;
                continue;
            };
            match socket.send_slice(&answer, endpoint) {
                Ok(()) => {
                    stats.dns_responses += 1;
                    sent = true;
                }
                Err(e) => log::debug!("lab DNS: answer to {endpoint} dropped: {e}"),
            }
        }
        sent
    }
}
