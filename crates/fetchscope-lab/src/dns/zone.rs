//! [`Zone`]: the lab's names, and the pure function from a DNS query to its response.

use std::net::Ipv4Addr;

use hickory_proto::op::{Edns, Message, MessageType, OpCode, Query, ResponseCode};
use hickory_proto::rr::rdata::A;
use hickory_proto::rr::{DNSClass, RData, Record, RecordType};

/// TTL of the lab's A records, in seconds.
pub const DNS_TTL: u32 = 300;

/// Largest UDP payload the server advertises and answers with when the query has EDNS(0).
const EDNS_PAYLOAD: u16 = 1232;

/// Largest answer without EDNS(0) (RFC 1035).
const CLASSIC_PAYLOAD: usize = 512;

/// The lab's authoritative data: names with one IPv4 address each.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Zone {
    records: Vec<(String, Ipv4Addr)>,
}

impl Zone {
    /// A zone of `(name, address)` pairs; names are matched without case or final dot.
    pub fn new(records: impl IntoIterator<Item = (String, Ipv4Addr)>) -> Self {
        Zone {
            records: records
                .into_iter()
                .map(|(name, addr)| (normalize(&name), addr))
                .collect(),
        }
    }

    /// The zone's names and addresses.
    pub fn records(&self) -> &[(String, Ipv4Addr)] {
        &self.records
    }

    /// The address of `name`, if the zone has it.
    pub fn lookup(&self, name: &str) -> Option<Ipv4Addr> {
        let name = normalize(name);
        self.records
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, addr)| *addr)
    }

    /// The response to one DNS datagram, or `None` when it gets no answer at all (shorter
    /// than a DNS header, or not a query).
    ///
    /// - A for a known name: the address, TTL [`DNS_TTL`]; other types for a known name:
    ///   NOERROR without answers; an unknown name: NXDOMAIN. AA and RA are set, the id,
    ///   opcode, RD flag and question are echoed.
    /// - Undecodable queries get FORMERR, opcodes other than QUERY NOTIMP, classes other
    ///   than IN REFUSED, anything but exactly one question FORMERR.
    pub fn answer(&self, query: &[u8]) -> Option<Vec<u8>> {
        let [id_high, id_low, flags, ..] = *query else {
            return None;
        };
        if query.len() < 12 {
            return None;
        }
        let id = u16::from_be_bytes([id_high, id_low]);
        let is_response = flags & 0x80 != 0;
        if is_response {
            return None;
        }
        let op_code = OpCode::from_u8((flags >> 3) & 0x0f);
        let recursion_desired = flags & 0x01 != 0;

        let request = match Message::from_vec(query) {
            Ok(m) => m,
            Err(e) => {
                log::debug!("lab DNS: undecodable query id {id}: {e}");
                return error_response(id, op_code, recursion_desired, ResponseCode::FormErr);
            }
        };
        if request.metadata.message_type != MessageType::Query {
            return None;
        }
        if request.metadata.op_code != OpCode::Query {
            return error_response(id, op_code, recursion_desired, ResponseCode::NotImp);
        }
        let [question] = request.queries.as_slice() else {
            return error_response(id, op_code, recursion_desired, ResponseCode::FormErr);
        };

        let mut response = Message::response(id, OpCode::Query);
        response.metadata.authoritative = true;
        response.metadata.recursion_desired = recursion_desired;
        response.metadata.recursion_available = true;
        response.add_query(question.clone());
        if request.edns.is_some() {
            let mut edns = Edns::new();
            edns.set_max_payload(EDNS_PAYLOAD);
            response.edns = Some(edns);
        }
        self.fill_answer(&mut response, question);

        let bytes = response.to_vec().ok()?;
        let limit = if request.edns.is_some() {
            usize::from(EDNS_PAYLOAD)
        } else {
            CLASSIC_PAYLOAD
        };
        if bytes.len() > limit {
            return response.truncate().to_vec().ok();
        }
        Some(bytes)
    }

    fn fill_answer(&self, response: &mut Message, question: &Query) {
        if question.query_class() != DNSClass::IN {
            response.metadata.response_code = ResponseCode::Refused;
            response.metadata.authoritative = false;
            return;
        }
        match self.lookup(&question.name().to_ascii()) {
            None => response.metadata.response_code = ResponseCode::NXDomain,
            Some(addr) => {
                if matches!(question.query_type(), RecordType::A | RecordType::ANY) {
                    response.add_answer(Record::from_rdata(
                        question.name().clone(),
                        DNS_TTL,
                        RData::A(A(addr)),
                    ));
                }
            }
        }
    }
}

/// An answer with only a header (and the given response code).
fn error_response(
    id: u16,
    op_code: OpCode,
    recursion_desired: bool,
    code: ResponseCode,
) -> Option<Vec<u8>> {
    let mut m = Message::error_msg(id, op_code, code);
    m.metadata.recursion_desired = recursion_desired;
    m.metadata.recursion_available = true;
    m.to_vec().ok()
}

/// Lower case, without the final dot.
fn normalize(name: &str) -> String {
    name.trim_end_matches('.').to_ascii_lowercase()
}

#[cfg(test)]
mod tests {
    use super::*;
    use hickory_proto::rr::Name;

    fn zone() -> Zone {
        Zone::new([
            ("www.example.test".to_owned(), Ipv4Addr::new(10, 88, 0, 1)),
            ("example.test".to_owned(), Ipv4Addr::new(10, 88, 0, 1)),
        ])
    }

    fn query(id: u16, name: &str, ty: RecordType) -> Vec<u8> {
        let mut m = Message::new(id, MessageType::Query, OpCode::Query);
        m.metadata.recursion_desired = true;
        m.add_query(Query::query(Name::from_ascii(name).unwrap(), ty));
        m.to_vec().unwrap()
    }

    fn parse(bytes: &[u8]) -> Message {
        Message::from_vec(bytes).unwrap()
    }

    #[test]
    fn a_record_for_known_names_any_case() {
        for name in ["www.example.test", "WWW.Example.TEST.", "example.test"] {
            let r = parse(&zone().answer(&query(4711, name, RecordType::A)).unwrap());
            assert_eq!(r.metadata.id, 4711);
            assert_eq!(r.metadata.message_type, MessageType::Response);
            assert_eq!(r.metadata.response_code, ResponseCode::NoError);
            assert!(r.metadata.authoritative && r.metadata.recursion_available);
            assert!(r.metadata.recursion_desired);
            assert_eq!(r.queries.len(), 1);
            assert_eq!(r.answers.len(), 1);
            assert_eq!(r.answers[0].ttl, DNS_TTL);
            assert_eq!(r.answers[0].data, RData::A(A(Ipv4Addr::new(10, 88, 0, 1))));
        }
    }

    #[test]
    fn aaaa_for_known_name_is_empty_noerror_and_unknown_is_nxdomain() {
        let r = parse(
            &zone()
                .answer(&query(1, "www.example.test", RecordType::AAAA))
                .unwrap(),
        );
        assert_eq!(r.metadata.response_code, ResponseCode::NoError);
        assert!(r.answers.is_empty());
        let r = parse(
            &zone()
                .answer(&query(2, "nope.test", RecordType::A))
                .unwrap(),
        );
        assert_eq!(r.metadata.response_code, ResponseCode::NXDomain);
        assert!(r.answers.is_empty());
        assert_eq!(r.queries[0].name().to_ascii(), "nope.test.");
    }

    #[test]
    fn edns_query_gets_edns_answer() {
        let mut m = parse(&query(3, "www.example.test", RecordType::A));
        m.edns = Some(Edns::new());
        let r = parse(&zone().answer(&m.to_vec().unwrap()).unwrap());
        assert_eq!(r.edns.map(|e| e.max_payload()), Some(EDNS_PAYLOAD));
    }

    #[test]
    fn malformed_queries_never_panic() {
        let z = zone();
        assert_eq!(z.answer(&[]), None);
        assert_eq!(z.answer(&[1, 2, 3]), None);
        // header claims one question that isn't there: FORMERR with the same id
        let r = parse(
            &z.answer(&[0xab, 0xcd, 0x01, 0, 0, 1, 0, 0, 0, 0, 0, 0])
                .unwrap(),
        );
        assert_eq!(r.metadata.id, 0xabcd);
        assert_eq!(r.metadata.response_code, ResponseCode::FormErr);
        // no question at all
        let r = parse(&z.answer(&[0, 7, 0x01, 0, 0, 0, 0, 0, 0, 0, 0, 0]).unwrap());
        assert_eq!(r.metadata.response_code, ResponseCode::FormErr);
        // a response is not answered
        let mut resp = query(5, "www.example.test", RecordType::A);
        resp[2] |= 0x80;
        assert_eq!(z.answer(&resp), None);
        // a compression pointer loop
        let mut looped = vec![0, 9, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0];
        looped.extend_from_slice(&[0xc0, 12, 0, 1, 0, 1]);
        let r = parse(&z.answer(&looped).unwrap());
        assert_eq!(r.metadata.response_code, ResponseCode::FormErr);
        // deterministic pseudo-random garbage
        let mut x: u32 = 0x1234_5678;
        for len in 0..600usize {
            let bytes: Vec<u8> = (0..len)
                .map(|_| {
                    x ^= x << 13;
                    x ^= x >> 17;
                    x ^= x << 5;
                    x as u8
                })
                .collect();
            let _ = z.answer(&bytes);
        }
    }

    #[test]
    fn other_opcodes_and_classes() {
        let mut q = query(6, "www.example.test", RecordType::A);
        q[2] |= 2 << 3; // opcode STATUS
        let r = parse(&zone().answer(&q).unwrap());
        assert_eq!(r.metadata.response_code, ResponseCode::NotImp);
        let mut m = parse(&query(7, "www.example.test", RecordType::A));
        m.queries[0].set_query_class(DNSClass::CH);
        let r = parse(&zone().answer(&m.to_vec().unwrap()).unwrap());
        assert_eq!(r.metadata.response_code, ResponseCode::Refused);
    }
}
