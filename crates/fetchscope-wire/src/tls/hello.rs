//! Details of individual handshake messages: ClientHello, ServerHello / HelloRetryRequest,
//! EncryptedExtensions and Certificate (parsed with tls-parser where it can).

use tls_parser::{
    SNIType, TlsExtension, TlsMessage, TlsMessageHandshake, parse_tls_client_hello_extensions,
    parse_tls_extensions, parse_tls_message_handshake, parse_tls_server_hello_extensions,
};

use crate::error::DecodeError;
use crate::tls::ja4::{self, ClientHelloParts, ServerHelloParts};
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
    let ciphers: Vec<u16> = ch.ciphers.iter().map(|c| c.0).collect();
    rec.cipher_suites = ciphers
        .iter()
        .take(MAX_LIST)
        .map(|&s| names::suite(s))
        .collect();
    let ext_types = ch.ext.map(extension_types).unwrap_or_default();
    rec.extensions = extension_names(&ext_types);
    let mut versions = Vec::new();
    let mut signature_algorithms = Vec::new();
    let mut alpn = None;
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
                TlsExtension::ALPN(list) => {
                    alpn = alpn.or_else(|| list.first().copied());
                    rec.alpn = protocols(&list);
                }
                TlsExtension::SupportedVersions(list) => {
                    rec.versions = list
                        .iter()
                        .take(MAX_LIST)
                        .map(|v| names::version(v.0))
                        .collect();
                    versions = list.iter().map(|v| v.0).collect();
                }
                TlsExtension::SignatureAlgorithms(list) => {
                    rec.signature_algorithms = list
                        .iter()
                        .take(MAX_LIST)
                        .map(|&s| names::signature_scheme(s))
                        .collect();
                    signature_algorithms = list;
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
    rec.ja4 = Some(ja4::ja4(&ClientHelloParts {
        legacy_version: ch.version.0,
        ciphers: &ciphers,
        extensions: &ext_types,
        versions: &versions,
        alpn,
        signature_algorithms: &signature_algorithms,
    }));
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
    let ext_types = sh.ext.map(extension_types).unwrap_or_default();
    rec.extensions = extension_names(&ext_types);
    let mut alpn = None;
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
                TlsExtension::ALPN(list) => {
                    alpn = alpn.or_else(|| list.first().copied());
                    rec.alpn = protocols(&list);
                }
                _ => {}
            }
        }
    }
    rec.suite = Some(names::suite(suite));
    rec.version_selected = Some(names::version(version));
    rec.ja4s = Some(ja4::ja4s(&ServerHelloParts {
        version,
        cipher: suite,
        extensions: &ext_types,
        alpn,
    }));
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

/// The extension types of an extension block (after its 2-byte length), in order; a cut
/// short last extension still counts, bytes too few for a type end the walk.
fn extension_types(block: &[u8]) -> Vec<u16> {
    let mut out = Vec::new();
    let mut rest = block;
    while let Some(h) = rest.get(..4) {
        out.push(u16::from_be_bytes([h[0], h[1]]));
        let len = usize::from(u16::from_be_bytes([h[2], h[3]]));
        rest = rest.get(4 + len..).unwrap_or_default();
    }
    out
}

/// The names of the first [`MAX_LIST`] extension types.
fn extension_names(types: &[u16]) -> Vec<String> {
    types
        .iter()
        .take(MAX_LIST)
        .map(|&t| names::extension(t))
        .collect()
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

    /// The first flight of a rustls client offering h2 and http/1.1 to www.example.test:
    /// one handshake record holding the ClientHello.
    fn rustls_client_hello() -> Vec<u8> {
        use std::sync::Arc;
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut config = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .expect("versions")
            .with_root_certificates(rustls::RootCertStore::empty())
            .with_no_client_auth();
        config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        let name = "www.example.test".try_into().expect("name");
        let mut conn = rustls::ClientConnection::new(Arc::new(config), name).expect("client");
        let mut out = Vec::new();
        conn.write_tls(&mut out).expect("first flight");
        out
    }

    #[test]
    fn rustls_client_hello_details_and_ja4() {
        let flight = rustls_client_hello();
        assert_eq!(flight.first(), Some(&22));
        let mut rec = TlsRecord::default();
        let facts = describe(&flight[5..], true, &mut rec).expect("ClientHello");
        assert!(matches!(facts, Facts::ClientHello { .. }));
        assert_eq!(rec.sni.as_deref(), Some("www.example.test"));
        assert_eq!(Some(rec.cipher_suites.len()), rec.suites);
        assert!(
            rec.cipher_suites
                .iter()
                .any(|s| s == "TLS13_AES_128_GCM_SHA256")
        );
        assert!(
            rec.cipher_suites
                .iter()
                .any(|s| s == "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256")
        );
        for ext in [
            "server_name",
            "supported_groups",
            "signature_algorithms",
            "application_layer_protocol_negotiation",
            "supported_versions",
            "key_share",
        ] {
            assert!(rec.extensions.iter().any(|e| e == ext), "{ext}: {rec:?}");
        }
        assert!(!rec.extensions.iter().any(|e| e.starts_with("unknown")));
        assert!(
            rec.signature_algorithms
                .iter()
                .any(|s| s == "ecdsa_secp256r1_sha256")
        );
        assert!(
            rec.signature_algorithms
                .iter()
                .any(|s| s == "rsa_pss_rsae_sha256")
        );
        assert!(!rec.signature_algorithms.iter().any(|s| s.starts_with("0x")));
        // t13 (supported_versions has TLS 1.3), d (SNI), counts, h2, two 12-digit hashes.
        let ja4 = rec.ja4.as_deref().expect("ja4");
        let suites = rec.cipher_suites.iter().filter(|s| *s != "GREASE").count();
        let exts = rec.extensions.iter().filter(|e| *e != "GREASE").count();
        assert_eq!(&ja4[..10], format!("t13d{suites:02}{exts:02}h2"), "{ja4}");
        let parts: Vec<&str> = ja4.split('_').collect();
        assert_eq!(parts.len(), 3, "{ja4}");
        for hash in &parts[1..] {
            assert_eq!(hash.len(), 12, "{ja4}");
            assert!(
                hash.bytes()
                    .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
            );
        }
        assert!(rec.ja4s.is_none());
        let json = serde_json::to_value(&rec).expect("serialises");
        assert_eq!(json["ja4"], ja4);
        assert_eq!(json["extensions"][0], rec.extensions[0].as_str());
    }

    // Real hellos captured on loopback (tcpdump) against `openssl s_server -alpn
    // h2,http/1.1`, handshake header included. Their JA4/JA4S values are what FoxIO's own
    // reference implementation (python/ja4.py of FoxIO-LLC/ja4, run with tshark 4.0.17)
    // printed for the same capture; the TLS 1.2 JA4S values, which that tool did not
    // print (the ServerHello shares its segment with the Certificate), were checked by
    // hand from their raw strings (t1204h1_c02c_ff01,000b,0010,0017).
    /// curl 7.88 (OpenSSL 3.0), TLS 1.3, h2 and http/1.1 offered.
    const CURL_TLS13_CLIENT_HELLO: &str = concat!(
        "010001fc0303546860b6560f589b8f62b1b67b141aa2538571dd5b04e65f81f2f9f39068ef7620a75e0dec8ec7ff771b",
        "5d2872740d3b32a614a9f718693e4cd00cef677662fef2003e130213031301c02cc030009fcca9cca8ccaac02bc02f00",
        "9ec024c028006bc023c0270067c00ac0140039c009c0130033009d009c003d003c0035002f00ff010001750000000e00",
        "0c0000096c6f63616c686f7374000b000403000102000a00160014001d0017001e001900180100010101020103010400",
        "10000e000c02683208687474702f312e31001600000017000000310000000d002a002804030503060308070808080908",
        "0a080b080408050806040105010601030303010302040205020602002b0009080304030303020301002d000201010033",
        "00260024001d0020a2cbf28318d8add89ddfb1235e0e57ab755d00dec587d3005f61f6512e368d12001500b400000000",
        "000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000",
        "000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000",
        "000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000",
        "0000000000000000000000000000000000000000000000000000000000000000",
    );
    /// openssl s_server 3.0 answering it.
    const CURL_TLS13_SERVER_HELLO: &str = concat!(
        "020000760303b8d5cea7fafeab34737ed02f7d84132b81c3afa3888e266592b8c336b66c969520a75e0dec8ec7ff771b",
        "5d2872740d3b32a614a9f718693e4cd00cef677662fef2130200002e002b0002030400330024001d002096438f2d13d6",
        "0d198fe0b38164386cb2ccf48bda09755e12c71998d01deb3537",
    );
    /// curl 7.88 --tls-max 1.2 --http1.1.
    const CURL_TLS12_CLIENT_HELLO: &str = concat!(
        "010000d00303d4f29f80596a1bfcddf8cc5db4bae57a46852d2293022de1d39435aa7b325878000038c02cc030009fcc",
        "a9cca8ccaac02bc02f009ec024c028006bc023c0270067c00ac0140039c009c0130033009d009c003d003c0035002f00",
        "ff0100006f0000000e000c0000096c6f63616c686f7374000b000403000102000a000c000a001d0017001e0019001800",
        "10000b000908687474702f312e310016000000170000000d002a0028040305030603080708080809080a080b08040805",
        "0806040105010601030303010302040205020602",
    );
    /// openssl s_server 3.0 answering it (TLS 1.2, ALPN http/1.1).
    const CURL_TLS12_SERVER_HELLO: &str = concat!(
        "020000680303f6927f4d55f5eeff0dc4a35159a68106b9da316685901650444f574e47524401208eeeaea78f19048291",
        "13230df3b0729ca8c8144abd424b5f6366983019890149c02c000020ff01000100000b0004030001020010000b000908",
        "687474702f312e3100170000",
    );
    /// Python requests 2.34 (OpenSSL 3.0).
    const REQUESTS_CLIENT_HELLO: &str = concat!(
        "010001fc030353cd5afb91f8f17dd6caf5cfca3f61a54ed2024d081e8384366702e97a0dc70120baf6c052b63d4517ba",
        "bd66f4194e3a5ac89789b006e1d8290e2760dd3e9021ce0024130213031301c02cc030c02bc02fcca9cca8c024c028c0",
        "23c027009f009e006b006700ff0100018f0000000e000c0000096c6f63616c686f7374000b000403000102000a001600",
        "14001d0017001e00190018010001010102010301040010000b000908687474702f312e31001600000017000000310000",
        "000d002a0028040305030603080708080809080a080b080408050806040105010601030303010302040205020602002b",
        "00050403040303002d00020101003300260024001d002093e9c98716ffd9e340c4c7a8acf5a6d1472c1c0357e3b9fb5f",
        "4f7b79e5583a70001500d500000000000000000000000000000000000000000000000000000000000000000000000000",
        "000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000",
        "000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000",
        "000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000",
        "0000000000000000000000000000000000000000000000000000000000000000",
    );
    /// Python ssl, TLS 1.2 at most, http/1.1, to an IP address (no SNI).
    const PYTHON_TLS12_NO_SNI_CLIENT_HELLO: &str = concat!(
        "010000a80303e0ab91e175eb033ccc2dcb6ef4e78bbca69541620faca23c32762a3d497387ee00001ec02cc030c02bc0",
        "2fcca9cca8c024c028c023c027009f009e006b006700ff01000061000b000403000102000a000c000a001d0017001e00",
        "190018002300000010000b000908687474702f312e310016000000170000000d002a0028040305030603080708080809",
        "080a080b080408050806040105010601030303010302040205020602",
    );
    /// rustls 0.23 (ring), h2 and http/1.1, SNI www.example.test.
    const RUSTLS_CLIENT_HELLO: &str = concat!(
        "010000fc0303734a62605b63cc58437d2349458578fbcef8b4069540bd9f043f53ede72966c92081c3f07766916042b0",
        "b6133ff6a93f25f10f2aaa444131d04f8b5cadf530064b0014130213011303c02cc02bcca9c030c02fcca800ff010000",
        "9f000d00140012050304030807080608050804060105010401002300000010000e000c02683208687474702f312e3100",
        "0a00080006001d001700180000001500130000107777772e6578616d706c652e74657374000b00020100000500050100",
        "00000000170000002b00050403040303003300260024001d00203a56cbe0b40e9e43a87134c2c643146b21eb731d9528",
        "321b06ef01ee6d452a48002d00020101",
    );

    fn describe_hex(hex_msg: &str) -> TlsRecord {
        let msg = hex::decode(hex_msg).expect("hex");
        let mut rec = TlsRecord::default();
        describe(&msg, true, &mut rec).expect("hello");
        rec
    }

    #[test]
    fn fingerprints_match_the_reference_implementation() {
        let cases = [
            (
                CURL_TLS13_CLIENT_HELLO,
                "t13d3112h2_e8f1e7e78f70_b26ce05bbdd6",
            ),
            (
                CURL_TLS12_CLIENT_HELLO,
                "t12d2807h1_d943125447b4_a44c6288192a",
            ),
            (
                REQUESTS_CLIENT_HELLO,
                "t13d1812h1_85036bcba153_b26ce05bbdd6",
            ),
            (
                PYTHON_TLS12_NO_SNI_CLIENT_HELLO,
                "t12i1507h1_d68b136fe8d9_e7e480e5a997",
            ),
            (RUSTLS_CLIENT_HELLO, "t13d1011h2_61a7ad8aa9b6_3fcd1a44f3e3"),
        ];
        for (hello, expected) in cases {
            let rec = describe_hex(hello);
            assert_eq!(rec.ja4.as_deref(), Some(expected));
            assert!(rec.ja4s.is_none());
        }
        let sh = describe_hex(CURL_TLS13_SERVER_HELLO);
        assert_eq!(sh.ja4s.as_deref(), Some("t130200_1302_a56c5b993250"));
        assert_eq!(sh.extensions, vec!["supported_versions", "key_share"]);
        assert!(sh.ja4.is_none() && sh.cipher_suites.is_empty());
        let sh = describe_hex(CURL_TLS12_SERVER_HELLO);
        assert_eq!(sh.ja4s.as_deref(), Some("t1204h1_c02c_f8a64b40b891"));
        assert_eq!(
            sh.extensions,
            vec![
                "renegotiation_info",
                "ec_point_formats",
                "application_layer_protocol_negotiation",
                "extended_master_secret",
            ]
        );
    }

    #[test]
    fn openssl_client_hello_details() {
        let rec = describe_hex(CURL_TLS13_CLIENT_HELLO);
        assert_eq!(rec.cipher_suites.len(), 31);
        assert_eq!(rec.cipher_suites[0], "TLS13_AES_256_GCM_SHA384");
        assert_eq!(
            rec.cipher_suites.last().map(String::as_str),
            Some("TLS_EMPTY_RENEGOTIATION_INFO_SCSV")
        );
        assert_eq!(
            rec.extensions,
            vec![
                "server_name",
                "ec_point_formats",
                "supported_groups",
                "application_layer_protocol_negotiation",
                "encrypt_then_mac",
                "extended_master_secret",
                "post_handshake_auth",
                "signature_algorithms",
                "supported_versions",
                "psk_key_exchange_modes",
                "key_share",
                "padding",
            ]
        );
        assert_eq!(rec.signature_algorithms.len(), 20);
        assert_eq!(
            rec.signature_algorithms[..4],
            [
                "ecdsa_secp256r1_sha256",
                "ecdsa_secp384r1_sha384",
                "ecdsa_secp521r1_sha512",
                "ed25519"
            ]
        );
        assert_eq!(
            rec.signature_algorithms[14..],
            [
                "ecdsa_sha224",
                "rsa_pkcs1_sha224",
                "dsa_sha224",
                "dsa_sha256",
                "dsa_sha384",
                "dsa_sha512"
            ]
        );
        let python = describe_hex(PYTHON_TLS12_NO_SNI_CLIENT_HELLO);
        assert!(python.sni.is_none());
        assert!(python.ja4.is_some_and(|j| j.starts_with("t12i")));
    }

    #[test]
    fn grease_and_unknown_extensions_and_bounds() {
        // A ClientHello offering GREASE and 70 other suites, with three extensions:
        // GREASE, the unknown 0x1234, and signature_algorithms cut short.
        let mut body = vec![3, 3];
        body.extend([0u8; 32]);
        body.push(0);
        let suites: Vec<u16> = std::iter::once(0x3a3a).chain(0xc000..0xc046).collect();
        body.extend(u16::try_from(suites.len() * 2).expect("len").to_be_bytes());
        for s in &suites {
            body.extend(s.to_be_bytes());
        }
        body.extend([1, 0]);
        let exts: [u8; 16] = [
            0x4a, 0x4a, 0, 0, 0x12, 0x34, 0, 1, 0xff, 0, 0x0d, 0, 4, 0, 2, 4,
        ];
        body.extend(u16::try_from(exts.len()).expect("len").to_be_bytes());
        body.extend(exts);
        let mut msg = vec![1, 0];
        msg.extend(u16::try_from(body.len()).expect("len").to_be_bytes());
        msg.extend(&body);
        let mut rec = TlsRecord::default();
        let _ = describe(&msg, true, &mut rec);
        assert_eq!(rec.cipher_suites.len(), MAX_LIST);
        assert_eq!(rec.cipher_suites[0], "GREASE");
        assert_eq!(rec.suites, Some(71));
        assert_eq!(
            rec.extensions,
            vec!["GREASE", "unknown (0x1234)", "signature_algorithms"]
        );
        assert_eq!(extension_types(&[0, 0, 0, 9, 1]), vec![0]);
        assert_eq!(extension_types(&[0, 0, 0]), Vec::<u16>::new());
        assert_eq!(extension_types(&[0x12, 0x34, 0, 0, 0, 0x10]), vec![0x1234]);
    }
}
