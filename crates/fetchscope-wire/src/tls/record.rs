//! The serialisable view of one TLS record, and the 5-byte record header.

use serde::Serialize;

use crate::error::DecodeError;
use crate::tls::names;

/// Length of a TLS record header.
pub(crate) const HEADER_LEN: usize = 5;
/// The largest record body any TLS version allows (TLS 1.2 ciphertext: 2^14 + 2048).
pub(crate) const MAX_BODY: usize = (1 << 14) + 2048;

/// One TLS record, reported on the TCP segment that completes it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct TlsRecord {
    /// The outer content type: "handshake", "change_cipher_spec", "alert",
    /// "application_data", "heartbeat" or "unknown".
    pub record: &'static str,
    /// The record-layer version, e.g. "TLSv1.0" for a ClientHello, "TLSv1.2" after it.
    pub version: std::borrow::Cow<'static, str>,
    /// The record body length.
    pub length: u16,
    /// The first handshake message completed in this record.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// Every handshake message completed in this record (reassembled across records).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub messages: Vec<String>,
    /// ClientHello: server name indication.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sni: Option<String>,
    /// ClientHello: offered ALPN protocols; ServerHello/EncryptedExtensions: the chosen one.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub alpn: Vec<String>,
    /// ClientHello: supported_versions.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub versions: Vec<String>,
    /// ClientHello: supported_groups.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub groups: Vec<String>,
    /// ClientHello: the groups of the key shares sent.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub key_shares: Vec<String>,
    /// ClientHello: number of cipher suites offered.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub suites: Option<usize>,
    /// ClientHello: the cipher suites offered, in order ("GREASE" for GREASE values).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub cipher_suites: Vec<String>,
    /// ClientHello/ServerHello: every extension in order, by name ("GREASE",
    /// "unknown (0x1234)").
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub extensions: Vec<String>,
    /// ClientHello: signature_algorithms in order, e.g. "ecdsa_secp256r1_sha256".
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub signature_algorithms: Vec<String>,
    /// ClientHello: the JA4 fingerprint, e.g. "t13d1516h2_8daaf6152771_e5627efa2ab1".
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ja4: Option<String>,
    /// ServerHello: the chosen cipher suite.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub suite: Option<String>,
    /// ServerHello: the negotiated version (supported_versions, else legacy_version).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub version_selected: Option<String>,
    /// ServerHello: the key-exchange group; HelloRetryRequest: the group asked for.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub group: Option<String>,
    /// ServerHello: the JA4S fingerprint, e.g. "t120400_c030_4e8089b08790".
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ja4s: Option<String>,
    /// Certificate: how many certificates the chain holds.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub certificates: Option<usize>,
    /// True when the record is protected by the negotiated keys.
    pub encrypted: bool,
    /// For encrypted records: whether this dissector could decrypt it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub decrypted: Option<bool>,
    /// For encrypted records: the content type inside ("handshake", "alert",
    /// "application_data"), decrypted or inferred from the handshake state.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub inner: Option<&'static str>,
    /// Alert description, e.g. "close_notify".
    #[serde(skip_serializing_if = "Option::is_none")]
    pub alert: Option<String>,
    /// Alert level: "warning" or "fatal".
    #[serde(skip_serializing_if = "Option::is_none")]
    pub alert_level: Option<String>,
    /// Decrypted application data: the plaintext length.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub app_len: Option<usize>,
    /// Decrypted application data that begins with an HTTP/1.x start line: that line.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub http: Option<String>,
}

/// A parsed record header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct RecordHeader {
    /// Content type byte.
    pub kind: u8,
    /// Record-layer version.
    pub version: u16,
    /// Body length.
    pub len: u16,
}

impl RecordHeader {
    /// Parses and checks a 5-byte record header.
    pub fn parse(bytes: &[u8; HEADER_LEN]) -> Result<Self, DecodeError> {
        let [kind, major, minor, l0, l1] = *bytes;
        let version = u16::from_be_bytes([major, minor]);
        let len = u16::from_be_bytes([l0, l1]);
        if !(20..=24).contains(&kind) {
            return Err(DecodeError::field("record type", format!("0x{kind:02x}")));
        }
        if major != 3 || minor > 4 {
            return Err(DecodeError::field(
                "record version",
                format!("0x{version:04x}"),
            ));
        }
        if usize::from(len) > MAX_BODY {
            return Err(DecodeError::field("record length", len));
        }
        Ok(RecordHeader { kind, version, len })
    }

    /// A fresh report for a record with this header.
    pub fn report(&self) -> TlsRecord {
        TlsRecord {
            record: names::content_type(self.kind),
            version: names::version_name(self.version),
            length: self.len,
            ..TlsRecord::default()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_checks() {
        let h = RecordHeader::parse(&[22, 3, 1, 0, 249]).expect("valid");
        assert_eq!((h.kind, h.version, h.len), (22, 0x0301, 249));
        let r = h.report();
        assert_eq!(r.record, "handshake");
        assert_eq!(r.version, "TLSv1.0");
        let json = serde_json::to_value(&r).expect("serialises");
        assert_eq!(
            json,
            serde_json::json!({"record":"handshake","version":"TLSv1.0","length":249,"encrypted":false})
        );
        assert!(RecordHeader::parse(&[0x47, b'E', b'T', b' ', b'/']).is_err());
        assert!(RecordHeader::parse(&[23, 2, 0, 0, 1]).is_err());
        assert!(RecordHeader::parse(&[23, 3, 3, 0xff, 0xff]).is_err());
    }
}
