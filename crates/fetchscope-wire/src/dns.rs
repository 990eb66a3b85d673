//! DNS messages (decoded with hickory-proto), over UDP or over a TCP stream.

use std::fmt;

use hickory_proto::op::{Message, MessageType, OpCode};
use hickory_proto::rr::{Name, RData, Record};
use serde::{Serialize, Serializer};

use crate::error::DecodeError;

/// At most this many answer records are reported per message.
const MAX_ANSWERS: usize = 64;
/// Record data longer than this is cut (with "…") in the report.
const MAX_DATA_CHARS: usize = 200;

/// A DNS message: header, first question and the answer section.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DnsLayer {
    /// Transaction id.
    pub id: u16,
    /// True for a response (QR set).
    pub response: bool,
    /// "query", "status", "notify", "update" or "opcode N".
    pub opcode: String,
    /// "NOERROR", "NXDOMAIN", "SERVFAIL", ...
    pub rcode: String,
    /// Header flags that are set, among AA, TC, RD, RA, AD, CD.
    pub flags: DnsFlags,
    /// The first question's name, without the trailing dot.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub question: Option<String>,
    /// The first question's type, e.g. "A".
    #[serde(skip_serializing_if = "Option::is_none")]
    pub qtype: Option<String>,
    /// The answer section (empty for queries), at most 64 records.
    pub answers: Vec<DnsAnswer>,
    /// Number of records in the authority section.
    #[serde(skip_serializing_if = "is_zero")]
    pub authorities: usize,
    /// Number of records in the additional section (EDNS OPT not counted).
    #[serde(skip_serializing_if = "is_zero")]
    pub additionals: usize,
}

bitflags::bitflags! {
    /// The one-bit flags of a DNS header that are set (RFC 1035 §4.1.1, RFC 4035 §3.2).
    ///
    /// Serialised as the list of their names in the order AA, TC, RD, RA, AD, CD (see
    /// [`DnsFlags::names`]); shown by [`Display`](fmt::Display) the same way, comma
    /// separated (`AA, RD, RA`).
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
    pub struct DnsFlags: u8 {
        /// Authoritative answer.
        const AA = 1 << 0;
        /// Truncated: the answer did not fit and should be asked for over TCP.
        const TC = 1 << 1;
        /// Recursion desired.
        const RD = 1 << 2;
        /// Recursion available.
        const RA = 1 << 3;
        /// Authentic data (DNSSEC-validated).
        const AD = 1 << 4;
        /// Checking disabled (no DNSSEC validation wanted).
        const CD = 1 << 5;
    }
}

impl DnsFlags {
    /// The names of the set flags in the order AA, TC, RD, RA, AD, CD.
    pub fn names(self) -> impl Iterator<Item = &'static str> {
        self.iter_names().map(|(name, _)| name)
    }
}

impl fmt::Display for DnsFlags {
    /// `AA, RD, RA`, or `none` when no flag is set.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut names = self.names();
        match names.next() {
            None => f.write_str("none"),
            Some(first) => {
                f.write_str(first)?;
                names.try_for_each(|name| write!(f, ", {name}"))
            }
        }
    }
}

impl Serialize for DnsFlags {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_seq(self.names())
    }
}

/// One answer record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DnsAnswer {
    /// Owner name, without the trailing dot.
    pub name: String,
    /// Record type, e.g. "A", "CNAME".
    #[serde(rename = "type")]
    pub kind: String,
    /// Time to live in seconds.
    pub ttl: u32,
    /// The address for A/AAAA, the target name for CNAME, else the record data as text.
    pub data: String,
}

fn is_zero(n: &usize) -> bool {
    *n == 0
}

impl DnsLayer {
    /// Decodes one DNS message.
    pub fn decode(bytes: &[u8]) -> Result<Self, DecodeError> {
        let msg = Message::from_vec(bytes).map_err(|e| DecodeError::Rejected(e.to_string()))?;
        let meta = &msg.metadata;
        let mut flags = DnsFlags::empty();
        for (on, flag) in [
            (meta.authoritative, DnsFlags::AA),
            (meta.truncation, DnsFlags::TC),
            (meta.recursion_desired, DnsFlags::RD),
            (meta.recursion_available, DnsFlags::RA),
            (meta.authentic_data, DnsFlags::AD),
            (meta.checking_disabled, DnsFlags::CD),
        ] {
            flags.set(flag, on);
        }
        let question = msg.queries.first();
        Ok(DnsLayer {
            id: meta.id,
            response: meta.message_type == MessageType::Response,
            opcode: opcode_name(meta.op_code),
            rcode: rcode_name(u16::from(meta.response_code)),
            flags,
            question: question.map(|q| name_text(&q.name)),
            qtype: question.map(|q| q.query_type.to_string()),
            answers: msg.answers.iter().take(MAX_ANSWERS).map(answer).collect(),
            authorities: msg.authorities.len(),
            additionals: msg.additionals.len(),
        })
    }
}

fn answer(record: &Record) -> DnsAnswer {
    let data = match &record.data {
        RData::A(a) => a.0.to_string(),
        RData::AAAA(a) => a.0.to_string(),
        RData::CNAME(c) => name_text(&c.0),
        other => bounded(other.to_string()),
    };
    DnsAnswer {
        name: name_text(&record.name),
        kind: record.data.record_type().to_string(),
        ttl: record.ttl,
        data,
    }
}

/// A name as text without the trailing dot ("." stays for the root).
fn name_text(name: &Name) -> String {
    let text = name.to_ascii();
    match text.strip_suffix('.') {
        Some(stripped) if !stripped.is_empty() => bounded(stripped.to_string()),
        _ => text,
    }
}

fn bounded(mut text: String) -> String {
    if let Some((cut, _)) = text.char_indices().nth(MAX_DATA_CHARS) {
        text.truncate(cut);
        text.push('…');
    }
    text
}

fn opcode_name(op: OpCode) -> String {
    match op {
        OpCode::Query => "query".into(),
        OpCode::Status => "status".into(),
        OpCode::Notify => "notify".into(),
        OpCode::Update => "update".into(),
        OpCode::Unknown(n) => format!("opcode {n}"),
    }
}

/// The conventional upper-case mnemonic of a response code.
fn rcode_name(code: u16) -> String {
    let name = match code {
        0 => "NOERROR",
        1 => "FORMERR",
        2 => "SERVFAIL",
        3 => "NXDOMAIN",
        4 => "NOTIMP",
        5 => "REFUSED",
        6 => "YXDOMAIN",
        7 => "YXRRSET",
        8 => "NXRRSET",
        9 => "NOTAUTH",
        10 => "NOTZONE",
        16 => "BADVERS",
        n => return format!("RCODE{n}"),
    };
    name.into()
}

/// DNS over TCP for one direction: 2-byte length prefix framing over the in-order stream.
#[derive(Debug, Default)]
pub(crate) struct DnsTcpHalf {
    buf: Vec<u8>,
    lost: bool,
}

impl DnsTcpHalf {
    /// Adds in-order stream bytes; returns every message they complete.
    ///
    /// The buffer never holds more than one maximal message (2 + 65535 bytes) plus one
    /// segment.
    pub fn feed(&mut self, bytes: &[u8]) -> Vec<Result<DnsLayer, DecodeError>> {
        let mut out = Vec::new();
        if self.lost {
            return out;
        }
        self.buf.extend_from_slice(bytes);
        let mut start = 0;
        while let Some(len_bytes) = self.buf.get(start..start + 2) {
            let len = usize::from(u16::from_be_bytes([len_bytes[0], len_bytes[1]]));
            let Some(msg) = self.buf.get(start + 2..start + 2 + len) else {
                break;
            };
            out.push(DnsLayer::decode(msg));
            start += 2 + len;
        }
        self.buf.drain(..start);
        out
    }

    /// Bytes held of an incomplete message.
    pub fn buffered(&self) -> usize {
        self.buf.len()
    }

    /// Stops decoding after bytes went missing: the framing is lost.
    pub fn lose_sync(&mut self) {
        self.lost = true;
        self.buf = Vec::new();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hickory_proto::op::{Message, Query, ResponseCode};
    use hickory_proto::rr::RecordType;
    use hickory_proto::rr::rdata::{A, CNAME};

    fn query(id: u16, name: &str) -> Message {
        let mut msg = Message::new(id, MessageType::Query, OpCode::Query);
        msg.metadata.recursion_desired = true;
        msg.add_query(Query::query(
            Name::from_ascii(name).expect("name"),
            RecordType::A,
        ));
        msg
    }

    #[test]
    fn query_fields() {
        let bytes = query(4711, "www.example.test.").to_vec().expect("encodes");
        let dns = DnsLayer::decode(&bytes).expect("decodes");
        assert_eq!(dns.id, 4711);
        assert!(!dns.response);
        assert_eq!(dns.opcode, "query");
        assert_eq!(dns.rcode, "NOERROR");
        assert_eq!(dns.flags, DnsFlags::RD);
        assert_eq!(dns.question.as_deref(), Some("www.example.test"));
        assert_eq!(dns.qtype.as_deref(), Some("A"));
        let json = serde_json::to_value(&dns).expect("serialises");
        assert_eq!(json["flags"], serde_json::json!(["RD"]));
        assert_eq!(json["answers"], serde_json::json!([]));
        assert!(json.get("authorities").is_none());
    }

    #[test]
    fn answer_with_cname_and_address() {
        let mut msg = query(0x1267, "www.example.test.");
        msg.metadata.message_type = MessageType::Response;
        msg.metadata.recursion_available = true;
        let owner = Name::from_ascii("www.example.test.").expect("name");
        let target = Name::from_ascii("web.example.test.").expect("name");
        msg.add_answer(Record::from_rdata(
            owner,
            60,
            RData::CNAME(CNAME(target.clone())),
        ));
        msg.add_answer(Record::from_rdata(
            target,
            300,
            RData::A(A::new(10, 88, 0, 1)),
        ));
        let dns = DnsLayer::decode(&msg.to_vec().expect("encodes")).expect("decodes");
        assert!(dns.response);
        assert_eq!(dns.flags, DnsFlags::RD | DnsFlags::RA);
        assert_eq!(dns.flags.to_string(), "RD, RA");
        let all = DnsFlags::all();
        assert_eq!(
            serde_json::to_string(&all).expect("serialises"),
            r#"["AA","TC","RD","RA","AD","CD"]"#
        );
        assert_eq!(DnsFlags::empty().to_string(), "none");
        assert_eq!(dns.answers.len(), 2);
        assert_eq!(dns.answers[0].kind, "CNAME");
        assert_eq!(dns.answers[0].data, "web.example.test");
        assert_eq!(dns.answers[1].name, "web.example.test");
        assert_eq!(dns.answers[1].data, "10.88.0.1");
        assert_eq!(dns.answers[1].ttl, 300);
    }

    #[test]
    fn nxdomain_and_garbage() {
        let mut msg = query(9, "nope.test.");
        msg.metadata.message_type = MessageType::Response;
        msg.metadata.response_code = ResponseCode::NXDomain;
        let dns = DnsLayer::decode(&msg.to_vec().expect("encodes")).expect("decodes");
        assert_eq!(dns.rcode, "NXDOMAIN");
        assert!(DnsLayer::decode(&[0x12]).is_err());
        assert!(DnsLayer::decode(&[0xff; 40]).is_err());
    }

    #[test]
    fn tcp_framing_across_chunks() {
        let a = query(1, "a.test.").to_vec().expect("encodes");
        let b = query(2, "b.test.").to_vec().expect("encodes");
        let mut stream = Vec::new();
        for m in [&a, &b] {
            stream.extend_from_slice(&(m.len() as u16).to_be_bytes());
            stream.extend_from_slice(m);
        }
        let mut half = DnsTcpHalf::default();
        assert!(half.feed(&stream[..1]).is_empty());
        assert!(half.feed(&stream[1..10]).is_empty());
        let got = half.feed(&stream[10..]);
        let ids: Vec<u16> = got.into_iter().map(|r| r.expect("decodes").id).collect();
        assert_eq!(ids, vec![1, 2]);
        half.lose_sync();
        assert!(half.feed(&stream).is_empty());
    }
}
