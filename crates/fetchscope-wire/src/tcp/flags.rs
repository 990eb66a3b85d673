//! The flags of a TCP segment as a typed set.

use std::fmt;

use serde::{Serialize, Serializer};

bitflags::bitflags! {
    /// The flags set in a TCP header (the bits of header byte 13, RFC 9293 §3.1 and
    /// RFC 3168).
    ///
    /// Serialised as the list of set flags' names in the event stream's order
    /// (`["SYN","ACK"]`, see [`TcpFlags::names`]); shown by [`Display`](fmt::Display) in
    /// Wireshark's order, low bit first (`FIN, PSH, ACK`).
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
    pub struct TcpFlags: u8 {
        // Declared in the event stream's order, which `iter_names` follows.
        /// Synchronise sequence numbers: the first segment of each direction.
        const SYN = 0x02;
        /// The acknowledgment number is valid.
        const ACK = 0x10;
        /// No more data from the sender.
        const FIN = 0x01;
        /// Reset the connection.
        const RST = 0x04;
        /// Push: hand the data to the application at once.
        const PSH = 0x08;
        /// The urgent pointer is valid.
        const URG = 0x20;
        /// ECN echo.
        const ECE = 0x40;
        /// Congestion window reduced.
        const CWR = 0x80;
    }
}

impl TcpFlags {
    /// The flags of header byte 13, every bit kept.
    pub fn from_header_byte(byte: u8) -> Self {
        Self::from_bits_retain(byte)
    }

    /// The names of the set flags in the event stream's order: SYN, ACK, FIN, RST, PSH,
    /// URG, ECE, CWR.
    pub fn names(self) -> impl Iterator<Item = &'static str> {
        self.iter_names().map(|(name, _)| name)
    }

    /// The names of the set flags in Wireshark's display order, low bit first: FIN, SYN,
    /// RST, PSH, ACK, URG, ECE, CWR.
    pub fn display_names(self) -> impl Iterator<Item = &'static str> {
        (0..8).filter_map(move |bit| {
            let flag = Self::from_bits_retain(1 << bit);
            if self.contains(flag) {
                flag.iter_names().next().map(|(name, _)| name)
            } else {
                None
            }
        })
    }
}

impl fmt::Display for TcpFlags {
    /// `FIN, PSH, ACK` (Wireshark's order), or `none` when no flag is set.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut names = self.display_names();
        match names.next() {
            None => f.write_str("none"),
            Some(first) => {
                f.write_str(first)?;
                names.try_for_each(|name| write!(f, ", {name}"))
            }
        }
    }
}

impl Serialize for TcpFlags {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_seq(self.names())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_orders_and_json() {
        let f = TcpFlags::from_header_byte(0x19); // FIN, PSH, ACK
        assert!(f.contains(TcpFlags::FIN | TcpFlags::ACK));
        assert!(!f.contains(TcpFlags::SYN));
        assert_eq!(f.names().collect::<Vec<_>>(), ["ACK", "FIN", "PSH"]);
        assert_eq!(f.to_string(), "FIN, PSH, ACK");
        assert_eq!(
            serde_json::to_string(&f).expect("serialises"),
            r#"["ACK","FIN","PSH"]"#
        );
        let all = TcpFlags::from_header_byte(0xff);
        assert_eq!(
            all.names().collect::<Vec<_>>(),
            ["SYN", "ACK", "FIN", "RST", "PSH", "URG", "ECE", "CWR"]
        );
        assert_eq!(all.to_string(), "FIN, SYN, RST, PSH, ACK, URG, ECE, CWR");
        assert_eq!(TcpFlags::empty().to_string(), "none");
        assert_eq!(
            serde_json::to_string(&TcpFlags::empty()).ok(),
            Some("[]".into())
        );
    }
}
