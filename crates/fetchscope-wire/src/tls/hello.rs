//! Details of individual handshake messages: ClientHello, ServerHello / HelloRetryRequest,
//! EncryptedExtensions and Certificate (parsed with tls-parser where it can).

use tls_parser::{
    SNIType, TlsExtension, TlsMessage, TlsMessageHandshake, parse_tls_client_hello_extensions,
    parse_tls_extensions, parse_tls_message_handshake, parse_tls_server_hello_extensions,
};

use crate::error::DecodeError;
use crate::tls::names;
use crate::tls::record::TlsRecord;

/// At most this many entries of any list (ALPN, groups, ...) are reported.
const MAX_LIST: usize = 64;
/// Names and protocols are cut to this many characters.
const MAX_NAME: usize = 255;

/// The ServerHello.random of a HelloRetryRequest (RFC 8446 §4.1.3).
const HRR_RANDOM: [u8; 32] = [
    0xcf, 0x21, 0xad, 0x74, 0xe5, 0x9a, 0x61, 0x11, 0xbe, 0x1d, 0x8c, 0x02, 0x1e, 0x65, 0xb8, 0x91,
    0xc2, 0xa2, 0x11, 0x16, 0x7a, 0xbb, 0x8c, 0x5e, 0x07, 0x9e, 0x09, 0xe2, 0xc8, 0xa8, 0x33, 0x9c,
];

/// What the connection state machine needs to know from a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Facts {
    /// Nothing that changes the connection state.
    Nothing,
    /// A ClientHello with this client random.
    ClientHello {
        /// ClientHello.random.
        random: [u8; 32],
    },
    /// A ServerHello (or HelloRetryRequest).
    ServerHello {
        /// The negotiated version (from supported_versions when present).
        version: u16,
        /// The chosen cipher suite.
        suite: u16,
        /// True for a HelloRetryRequest.
        retry: bool,
    },
}

/// Describes the whole handshake message `msg` (4-byte header included) in `rec`: its name
/// goes to `messages`, its details to the matching fields. `tls13` selects the Certificate
/// layout.
pub(crate) fn describe(msg: &[u8], tls13: bool, rec: &mut TlsRecord) -> Result<Facts, DecodeError> {
    let kind = *msg.first().unwrap_or(&0xff);
    let body = msg.get(4..).unwrap_or_default();
    let mut name = names::handshake(kind);
    let facts = match kind {
        1 => client_hello(msg, rec),
        2 => {
            let facts = server_hello(msg, rec);
            if let Ok(Facts::ServerHello { retry: true, .. }) = facts {
                name = "HelloRetryRequest".into();
            }
            facts
        }
        8 => {
            encrypted_extensions(body, rec);
            Ok(Facts::Nothing)
        }
        11 => {
            rec.certificates = certificate_count(body, tls13);
            Ok(Facts::Nothing)
        }
        _ => Ok(Facts::Nothing),
    };
    if rec.message.is_none() {
        rec.message = Some(name.clone());
    }
    rec.messages.push(name);
    facts
}

/// What a parser's failure means, in words (its `Debug` text would show the input bytes).
fn parse_failure<E>(e: &tls_parser::nom::Err<E>) -> &'static str {
    match e {
        tls_parser::nom::Err::Incomplete(_) => "cut short",
        tls_parser::nom::Err::Error(_) | tls_parser::nom::Err::Failure(_) => "malformed",
    }
}

fn client_hello(msg: &[u8], rec: &mut TlsRecord) -> Result<Facts, DecodeError> {
    let parsed = parse_tls_message_handshake(msg)
        .map_err(|e| DecodeError::Rejected(format!("ClientHello: {}", parse_failure(&e))))?;
    let TlsMessage::Handshake(TlsMessageHandshake::ClientHello(ch)) = parsed.1 else {
        return Err(DecodeError::Rejected(
            "ClientHello: unexpected layout".into(),
        ));
    };
    let random: [u8; 32] = ch
        .random
        .try_into()
        .map_err(|_| DecodeError::field("ClientHello random length", ch.random.len()))?;
    rec.suites = Some(ch.ciphers.len());
    if let Some(ext) = ch.ext {
        let (_, exts) = parse_tls_client_hello_extensions(ext).map_err(|e| {
            DecodeError::Rejected(format!("ClientHello extensions: {}", parse_failure(&e)))
        })?;
        for ext in exts {
            match ext {
                TlsExtension::SNI(list) => {
                    rec.sni = list
                        .iter()
                        .find(|(t, _)| *t == SNIType::HostName)
                        .map(|(_, n)| names::printable(n, MAX_NAME));
                }
                TlsExtension::ALPN(list) => rec.alpn = protocols(&list),
                TlsExtension::SupportedVersions(list) => {
                    rec.versions = list
                        .iter()
                        .take(MAX_LIST)
                        .map(|v| names::version(v.0))
                        .collect();
                }
                TlsExtension::EllipticCurves(list) => {
                    rec.groups = list
                        .iter()
                        .take(MAX_LIST)
                        .map(|g| names::group(g.0))
                        .collect();
                }
                TlsExtension::KeyShare(bytes) => rec.key_shares = client_key_shares(bytes),
                _ => {}
            }
        }
    }
    Ok(Facts::ClientHello { random })
}

fn server_hello(msg: &[u8], rec: &mut TlsRecord) -> Result<Facts, DecodeError> {
    let parsed = parse_tls_message_handshake(msg)
        .map_err(|e| DecodeError::Rejected(format!("ServerHello: {}", parse_failure(&e))))?;
    let TlsMessage::Handshake(TlsMessageHandshake::ServerHello(sh)) = parsed.1 else {
        return Err(DecodeError::Rejected(
            "ServerHello: unexpected layout".into(),
        ));
    };
    let retry = sh.random == HRR_RANDOM;
    let mut version = sh.version.0;
    let suite = sh.cipher.0;
    if let Some(ext) = sh.ext {
        let (_, exts) = parse_tls_server_hello_extensions(ext).map_err(|e| {
            DecodeError::Rejected(format!("ServerHello extensions: {}", parse_failure(&e)))
        })?;
        for ext in exts {
            match ext {
                TlsExtension::SupportedVersions(list) => {
                    if let Some(v) = list.first() {
                        version = v.0;
                    }
                }
                // ServerHello: one KeyShareEntry (group, key); HelloRetryRequest: a group.
                TlsExtension::KeyShare(bytes) => {
                    rec.group = bytes
                        .get(..2)
                        .map(|g| names::group(u16::from_be_bytes([g[0], g[1]])));
                }
                TlsExtension::ALPN(list) => rec.alpn = protocols(&list),
                _ => {}
            }
        }
    }
    rec.suite = Some(names::suite(suite));
    rec.version_selected = Some(names::version(version));
    Ok(Facts::ServerHello {
        version,
        suite,
        retry,
    })
}

/// EncryptedExtensions: a 2-byte length, then extensions; reports the chosen ALPN.
fn encrypted_extensions(body: &[u8], rec: &mut TlsRecord) {
    let Some(exts) = body.get(2..) else {
        return;
    };
    if let Ok((_, list)) = parse_tls_extensions(exts) {
        for ext in list {
            if let TlsExtension::ALPN(p) = ext {
                rec.alpn = protocols(&p);
            }
        }
    }
}

/// Number of certificates in a Certificate message (TLS 1.3 adds a request context and
/// per-entry extensions, RFC 8446 §4.4.2).
fn certificate_count(body: &[u8], tls13: bool) -> Option<usize> {
    let mut rest = body;
    if tls13 {
        let ctx_len = usize::from(*rest.first()?);
        rest = rest.get(1 + ctx_len..)?;
    }
    let list_len = u24(rest)?;
    let mut list = rest.get(3..3 + list_len)?;
    let mut count = 0;
    while !list.is_empty() {
        let cert_len = u24(list)?;
        list = list.get(3 + cert_len..)?;
        if tls13 {
            let ext = list.get(..2)?;
            let ext_len = usize::from(u16::from_be_bytes([ext[0], ext[1]]));
            list = list.get(2 + ext_len..)?;
        }
        count += 1;
    }
    Some(count)
}

fn u24(b: &[u8]) -> Option<usize> {
    let h = b.get(..3)?;
    Some(usize::from(h[0]) << 16 | usize::from(h[1]) << 8 | usize::from(h[2]))
}

fn protocols(list: &[&[u8]]) -> Vec<String> {
    list.iter()
        .take(MAX_LIST)
        .map(|p| names::printable(p, MAX_NAME))
        .collect()
}

/// The groups of a ClientHello key_share: a 2-byte list length, then (group, length, key).
fn client_key_shares(bytes: &[u8]) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = bytes.get(2..).unwrap_or_default();
    while let Some(h) = rest.get(..4) {
        if out.len() >= MAX_LIST {
            break;
        }
        out.push(names::group(u16::from_be_bytes([h[0], h[1]])));
        let len = usize::from(u16::from_be_bytes([h[2], h[3]]));
        rest = rest.get(4 + len..).unwrap_or_default();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn certificate_counts() {
        // TLS 1.2: list of two certificates of 1 and 2 bytes.
        let tls12 = [0, 0, 9, 0, 0, 1, 0xaa, 0, 0, 2, 0xbb, 0xcc];
        assert_eq!(certificate_count(&tls12, false), Some(2));
        // TLS 1.3: empty context, one 1-byte certificate with no extensions.
        let tls13 = [0, 0, 0, 6, 0, 0, 1, 0xaa, 0, 0];
        assert_eq!(certificate_count(&tls13, true), Some(1));
        assert_eq!(certificate_count(&tls13[..5], true), None);
    }

    #[test]
    fn key_shares_and_garbage_hellos() {
        let shares = [0, 10, 0x00, 0x1d, 0, 2, 1, 2, 0x11, 0xec, 0, 0];
        assert_eq!(client_key_shares(&shares), vec!["x25519", "X25519MLKEM768"]);
        let mut rec = TlsRecord::default();
        assert!(describe(&[1, 0, 0, 2, 3, 3], true, &mut rec).is_err());
        assert!(describe(&[2, 0, 0, 1, 9], true, &mut rec).is_err());
        assert_eq!(rec.messages, vec!["ClientHello", "ServerHello"]);
        let mut rec = TlsRecord::default();
        assert_eq!(describe(&[20, 0, 0, 0], true, &mut rec), Ok(Facts::Nothing));
        assert_eq!(rec.message.as_deref(), Some("Finished"));
    }
}
