//! [`DnsService`]: the lab's [`Zone`] served on a smoltcp UDP socket, port 53, with the
//! DNS faults applied.

use std::net::Ipv4Addr;

use hickory_proto::op::{Message, ResponseCode};
use hickory_proto::rr::RData;
use hickory_proto::rr::rdata::A;
use smoltcp::iface::{SocketHandle, SocketSet};
use smoltcp::socket::udp;

use super::Zone;
use super::zone::{AnswerPolicy, Transport};
use crate::error::LabError;
use crate::fault::LabFault;
use crate::stats::ServerStats;

/// Datagrams the socket buffers in each direction.
const QUEUE_PACKETS: usize = 16;
/// Bytes the socket buffers in each direction (larger datagrams are dropped by smoltcp).
const QUEUE_BYTES: usize = 16 * 1024;

/// XORed into the id of the decoy answer of the `dns-wrong-id` fault (never zero, so the
/// decoy's id always differs from the query's).
const WRONG_ID_MASK: u16 = 0x5a5a;

/// The address the decoy answer of `dns-wrong-id` gives: nothing answers there, so a
/// client that wrongly accepted the decoy would never connect.
pub const DECOY_ADDR: Ipv4Addr = Ipv4Addr::new(10, 88, 0, 66);

/// How the DNS server behaves under a fault.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) enum DnsBehaviour {
    /// Answers from the zone.
    #[default]
    Normal,
    /// Answers every query with this response code.
    Rcode(ResponseCode),
    /// Never answers.
    Silent,
    /// Sends a decoy with a wrong id before each real answer (UDP only).
    WrongIdFirst,
    /// Truncates every UDP answer (TC bit, no records); TCP answers in full.
    TruncateUdp,
    /// Answers aliases with their CNAME record only; `www.example.test` is an alias of
    /// `example.test`, or (`looped`) of [`LOOP_NAME`], an alias of `www.example.test`.
    CnameOnly {
        /// The alias points back to itself through [`LOOP_NAME`].
        looped: bool,
    },
    /// Pads every answer past the MTU (and past the UDP size limit).
    Padded,
}

/// The second name of the `dns-cname-loop` fault's alias loop.
pub const LOOP_NAME: &str = "loop.example.test";

impl DnsBehaviour {
    /// The behaviour for the lab's fault.
    pub fn for_fault(fault: Option<LabFault>) -> Self {
        match fault {
            Some(LabFault::Nxdomain) => DnsBehaviour::Rcode(ResponseCode::NXDomain),
            Some(LabFault::Servfail) => DnsBehaviour::Rcode(ResponseCode::ServFail),
            Some(LabFault::DnsSilent) => DnsBehaviour::Silent,
            Some(LabFault::DnsWrongId) => DnsBehaviour::WrongIdFirst,
            Some(LabFault::DnsTruncated) => DnsBehaviour::TruncateUdp,
            Some(LabFault::DnsCnameOnly) => DnsBehaviour::CnameOnly { looped: false },
            Some(LabFault::DnsCnameLoop) => DnsBehaviour::CnameOnly { looped: true },
            Some(LabFault::DnsBigAnswer | LabFault::DnsFragmentLost) => DnsBehaviour::Padded,
            _ => DnsBehaviour::Normal,
        }
    }

    /// How answers are built for `transport`.
    pub fn policy(self, transport: Transport) -> AnswerPolicy {
        AnswerPolicy {
            transport,
            rcode: match self {
                DnsBehaviour::Rcode(code) => Some(code),
                _ => None,
            },
            truncate: self == DnsBehaviour::TruncateUdp && transport == Transport::Udp,
            cname_only: matches!(self, DnsBehaviour::CnameOnly { .. }),
            pad: self == DnsBehaviour::Padded,
        }
    }

    /// The zone served under this behaviour: the alias faults turn `www.example.test`
    /// into an alias.
    pub fn zone(self, zone: Zone) -> Zone {
        match self {
            DnsBehaviour::CnameOnly { looped: false } => {
                zone.with_alias("www.example.test", "example.test")
            }
            DnsBehaviour::CnameOnly { looped: true } => zone
                .with_alias("www.example.test", LOOP_NAME)
                .with_alias(LOOP_NAME, "www.example.test"),
            _ => zone,
        }
    }
}

/// The DNS server: one UDP socket on port 53 answering from a [`Zone`].
#[derive(Debug)]
pub(crate) struct DnsService {
    zone: Zone,
    behaviour: DnsBehaviour,
    handle: SocketHandle,
}

impl DnsService {
    /// Binds UDP port 53 in `sockets`.
    pub fn new(
        zone: Zone,
        behaviour: DnsBehaviour,
        sockets: &mut SocketSet<'static>,
    ) -> Result<Self, LabError> {
        let buffer = || {
            udp::PacketBuffer::new(
                vec![udp::PacketMetadata::EMPTY; QUEUE_PACKETS],
                vec![0u8; QUEUE_BYTES],
            )
        };
        let mut socket = udp::Socket::new(buffer(), buffer());
        socket.bind(53)?;
        Ok(DnsService {
            zone: behaviour.zone(zone),
            behaviour,
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
        let policy = self.behaviour.policy(Transport::Udp);
        let mut sent = false;
        for _ in 0..QUEUE_PACKETS {
            let (answer, endpoint) = match socket.recv() {
                Ok((query, meta)) => {
                    stats.dns_queries += 1;
                    if self.behaviour == DnsBehaviour::Silent {
                        stats.dns_withheld += 1;
                        continue;
                    }
                    (self.zone.respond(query, &policy), meta.endpoint)
                }
                Err(_) => break,
            };
            let Some(answer) = answer else {
                stats.dns_ignored += 1;
                continue;
            };
            if self.behaviour == DnsBehaviour::WrongIdFirst
                && let Some(decoy) = decoy(&answer)
            {
                match socket.send_slice(&decoy, endpoint) {
                    Ok(()) => {
                        stats.dns_responses += 1;
                        sent = true;
                    }
                    Err(e) => log::debug!("lab DNS: decoy to {endpoint} dropped: {e}"),
                }
            }
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

/// The `dns-wrong-id` decoy for `answer`: the same response with another id and every
/// address replaced by [`DECOY_ADDR`] — what an off-path spoofer who guessed wrong sends.
fn decoy(answer: &[u8]) -> Option<Vec<u8>> {
    let mut m = Message::from_vec(answer).ok()?;
    m.metadata.id ^= WRONG_ID_MASK;
    for record in &mut m.answers {
        if matches!(record.data, RData::A(_)) {
            record.data = RData::A(A(DECOY_ADDR));
        }
    }
    m.to_vec().ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dns::ZoneRecord;
    use hickory_proto::op::{MessageType, OpCode, Query};
    use hickory_proto::rr::{Name, RecordType};

    #[test]
    fn the_decoy_differs_in_id_and_address_only() {
        let zone = Zone::new([(
            "www.example.test".to_owned(),
            ZoneRecord::A(Ipv4Addr::new(10, 88, 0, 1)),
        )]);
        let mut q = Message::new(0x1234, MessageType::Query, OpCode::Query);
        q.add_query(Query::query(
            Name::from_ascii("www.example.test.").unwrap(),
            RecordType::A,
        ));
        let answer = zone.answer(&q.to_vec().unwrap()).unwrap();
        let d = Message::from_vec(&decoy(&answer).unwrap()).unwrap();
        assert_eq!(d.metadata.id, 0x1234 ^ WRONG_ID_MASK);
        assert_ne!(d.metadata.id, 0x1234);
        assert_eq!(d.queries, Message::from_vec(&answer).unwrap().queries);
        assert_eq!(d.answers[0].data, RData::A(A(DECOY_ADDR)));
    }

    #[test]
    fn behaviours_map_to_policies() {
        let udp = DnsBehaviour::for_fault(Some(LabFault::DnsTruncated)).policy(Transport::Udp);
        assert!(udp.truncate);
        let tcp = DnsBehaviour::for_fault(Some(LabFault::DnsTruncated)).policy(Transport::Tcp);
        assert!(!tcp.truncate);
        let nx = DnsBehaviour::for_fault(Some(LabFault::Nxdomain)).policy(Transport::Tcp);
        assert_eq!(nx.rcode, Some(ResponseCode::NXDomain));
        assert_eq!(
            DnsBehaviour::for_fault(Some(LabFault::Slow)),
            DnsBehaviour::Normal
        );
        assert_eq!(DnsBehaviour::for_fault(None), DnsBehaviour::Normal);
        let alias = DnsBehaviour::for_fault(Some(LabFault::DnsCnameOnly));
        assert!(alias.policy(Transport::Udp).cname_only && alias.policy(Transport::Tcp).cname_only);
        for fault in [LabFault::DnsBigAnswer, LabFault::DnsFragmentLost] {
            let b = DnsBehaviour::for_fault(Some(fault));
            assert!(b.policy(Transport::Udp).pad && !b.policy(Transport::Udp).truncate);
        }
    }

    #[test]
    fn the_alias_faults_make_www_an_alias() {
        let zone = || {
            Zone::new([
                (
                    "www.example.test".to_owned(),
                    ZoneRecord::A(Ipv4Addr::new(10, 88, 0, 1)),
                ),
                (
                    "example.test".to_owned(),
                    ZoneRecord::A(Ipv4Addr::new(10, 88, 0, 1)),
                ),
            ])
        };
        let only = DnsBehaviour::for_fault(Some(LabFault::DnsCnameOnly)).zone(zone());
        assert_eq!(
            only.lookup("www.example.test"),
            Some(Ipv4Addr::new(10, 88, 0, 1))
        );
        assert!(only.records().contains(&(
            "www.example.test".to_owned(),
            ZoneRecord::Cname("example.test".to_owned())
        )));
        let looped = DnsBehaviour::for_fault(Some(LabFault::DnsCnameLoop)).zone(zone());
        assert!(looped.addresses("www.example.test").is_empty());
        assert!(looped.addresses(LOOP_NAME).is_empty());
        assert_eq!(DnsBehaviour::Normal.zone(zone()), zone());
    }
}
