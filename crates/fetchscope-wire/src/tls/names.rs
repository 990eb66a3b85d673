//! Readable names for TLS code points: versions, groups, cipher suites, extensions,
//! signature schemes, messages, alerts.

use tls_parser::TlsCipherSuiteID;

/// True for a GREASE value (RFC 8701): 0x?a?a with both bytes equal.
pub(crate) fn is_grease(v: u16) -> bool {
    v & 0x0f0f == 0x0a0a && (v >> 8) == (v & 0xff)
}

/// "TLSv1.3", "TLSv1.2", ... or "0x7f1c".
pub(crate) fn version(v: u16) -> String {
    version_name(v).into_owned()
}

/// [`version`] without allocating for the versions that have a name.
pub(crate) fn version_name(v: u16) -> std::borrow::Cow<'static, str> {
    match v {
        0x0300 => "SSLv3".into(),
        0x0301 => "TLSv1.0".into(),
        0x0302 => "TLSv1.1".into(),
        0x0303 => "TLSv1.2".into(),
        0x0304 => "TLSv1.3".into(),
        v if v >> 8 == 0x7f => format!("TLSv1.3-draft{}", v & 0xff).into(),
        v if is_grease(v) => "GREASE".into(),
        v => hex16(v).into(),
    }
}

/// "x25519", "secp256r1", "X25519MLKEM768", ... or "0x1234".
pub(crate) fn group(g: u16) -> String {
    let name = match g {
        0x0017 => "secp256r1",
        0x0018 => "secp384r1",
        0x0019 => "secp521r1",
        0x001d => "x25519",
        0x001e => "x448",
        0x001f => "brainpoolP256r1tls13",
        0x0020 => "brainpoolP384r1tls13",
        0x0021 => "brainpoolP512r1tls13",
        0x0100 => "ffdhe2048",
        0x0101 => "ffdhe3072",
        0x0102 => "ffdhe4096",
        0x0103 => "ffdhe6144",
        0x0104 => "ffdhe8192",
        0x0200 => "MLKEM512",
        0x0201 => "MLKEM768",
        0x0202 => "MLKEM1024",
        0x11eb => "SecP256r1MLKEM768",
        0x11ec => "X25519MLKEM768",
        0x11ed => "SecP384r1MLKEM1024",
        0x6399 => "X25519Kyber768Draft00",
        g if is_grease(g) => "GREASE",
        g => return hex16(g),
    };
    name.into()
}

/// Cipher suite names: rustls's spelling for TLS 1.3 suites, IANA names otherwise.
pub(crate) fn suite(s: u16) -> String {
    match s {
        0x1301 => "TLS13_AES_128_GCM_SHA256".into(),
        0x1302 => "TLS13_AES_256_GCM_SHA384".into(),
        0x1303 => "TLS13_CHACHA20_POLY1305_SHA256".into(),
        0x1304 => "TLS13_AES_128_CCM_SHA256".into(),
        0x1305 => "TLS13_AES_128_CCM_8_SHA256".into(),
        0x00ff => "TLS_EMPTY_RENEGOTIATION_INFO_SCSV".into(),
        s if is_grease(s) => "GREASE".into(),
        s => TlsCipherSuiteID(s)
            .get_ciphersuite()
            .map(|c| c.name.to_string())
            .unwrap_or_else(|| hex16(s)),
    }
}

/// Extension names per the IANA "TLS ExtensionType Values" registry, "GREASE", or
/// "unknown (0x1234)".
pub(crate) fn extension(t: u16) -> String {
    let name = match t {
        0 => "server_name",
        1 => "max_fragment_length",
        2 => "client_certificate_url",
        3 => "trusted_ca_keys",
        4 => "truncated_hmac",
        5 => "status_request",
        6 => "user_mapping",
        7 => "client_authz",
        8 => "server_authz",
        9 => "cert_type",
        10 => "supported_groups",
        11 => "ec_point_formats",
        12 => "srp",
        13 => "signature_algorithms",
        14 => "use_srtp",
        15 => "heartbeat",
        16 => "application_layer_protocol_negotiation",
        17 => "status_request_v2",
        18 => "signed_certificate_timestamp",
        19 => "client_certificate_type",
        20 => "server_certificate_type",
        21 => "padding",
        22 => "encrypt_then_mac",
        23 => "extended_master_secret",
        24 => "token_binding",
        25 => "cached_info",
        26 => "tls_lts",
        27 => "compress_certificate",
        28 => "record_size_limit",
        29 => "pwd_protect",
        30 => "pwd_clear",
        31 => "password_salt",
        32 => "ticket_pinning",
        33 => "tls_cert_with_extern_psk",
        34 => "delegated_credential",
        35 => "session_ticket",
        36 => "TLMSP",
        37 => "TLMSP_proxying",
        38 => "TLMSP_delegate",
        39 => "supported_ekt_ciphers",
        41 => "pre_shared_key",
        42 => "early_data",
        43 => "supported_versions",
        44 => "cookie",
        45 => "psk_key_exchange_modes",
        47 => "certificate_authorities",
        48 => "oid_filters",
        49 => "post_handshake_auth",
        50 => "signature_algorithms_cert",
        51 => "key_share",
        52 => "transparency_info",
        53 => "connection_id_deprecated",
        54 => "connection_id",
        55 => "external_id_hash",
        56 => "external_session_id",
        57 => "quic_transport_parameters",
        58 => "ticket_request",
        59 => "dnssec_chain",
        60 => "sequence_number_encryption_algorithms",
        61 => "rrc",
        0x3374 => "next_protocol_negotiation",
        // ALPS: Chrome's first code point, then the one it moved to.
        0x4469 => "application_settings",
        0x44cd => "application_settings_new",
        0x754f => "channel_id_old",
        0x7550 => "channel_id",
        0xfe0d => "encrypted_client_hello",
        0xff01 => "renegotiation_info",
        t if is_grease(t) => "GREASE",
        t => return format!("unknown ({})", hex16(t)),
    };
    name.into()
}

/// Signature scheme names (RFC 8446 §4.2.3 and the IANA registry; TLS 1.2's
/// hash/signature pairs in the same style), "GREASE", or "0x1234".
pub(crate) fn signature_scheme(s: u16) -> String {
    let name = match s {
        0x0201 => "rsa_pkcs1_sha1",
        0x0202 => "dsa_sha1",
        0x0203 => "ecdsa_sha1",
        0x0301 => "rsa_pkcs1_sha224",
        0x0302 => "dsa_sha224",
        0x0303 => "ecdsa_sha224",
        0x0401 => "rsa_pkcs1_sha256",
        0x0402 => "dsa_sha256",
        0x0403 => "ecdsa_secp256r1_sha256",
        0x0501 => "rsa_pkcs1_sha384",
        0x0502 => "dsa_sha384",
        0x0503 => "ecdsa_secp384r1_sha384",
        0x0601 => "rsa_pkcs1_sha512",
        0x0602 => "dsa_sha512",
        0x0603 => "ecdsa_secp521r1_sha512",
        0x0804 => "rsa_pss_rsae_sha256",
        0x0805 => "rsa_pss_rsae_sha384",
        0x0806 => "rsa_pss_rsae_sha512",
        0x0807 => "ed25519",
        0x0808 => "ed448",
        0x0809 => "rsa_pss_pss_sha256",
        0x080a => "rsa_pss_pss_sha384",
        0x080b => "rsa_pss_pss_sha512",
        0x081a => "ecdsa_brainpoolP256r1tls13_sha256",
        0x081b => "ecdsa_brainpoolP384r1tls13_sha384",
        0x081c => "ecdsa_brainpoolP512r1tls13_sha512",
        0x0904 => "mldsa44",
        0x0905 => "mldsa65",
        0x0906 => "mldsa87",
        s if is_grease(s) => "GREASE",
        s => return hex16(s),
    };
    name.into()
}

/// Handshake message names by type byte.
pub(crate) fn handshake(t: u8) -> String {
    let name = match t {
        0 => "HelloRequest",
        1 => "ClientHello",
        2 => "ServerHello",
        3 => "HelloVerifyRequest",
        4 => "NewSessionTicket",
        5 => "EndOfEarlyData",
        6 => "HelloRetryRequest",
        8 => "EncryptedExtensions",
        11 => "Certificate",
        12 => "ServerKeyExchange",
        13 => "CertificateRequest",
        14 => "ServerHelloDone",
        15 => "CertificateVerify",
        16 => "ClientKeyExchange",
        20 => "Finished",
        21 => "CertificateURL",
        22 => "CertificateStatus",
        24 => "KeyUpdate",
        25 => "CompressedCertificate",
        254 => "MessageHash",
        t => return format!("handshake(0x{t:02x})"),
    };
    name.into()
}

/// Record content types as used in the JSON `record` and `inner` fields.
pub(crate) fn content_type(t: u8) -> &'static str {
    match t {
        20 => "change_cipher_spec",
        21 => "alert",
        22 => "handshake",
        23 => "application_data",
        24 => "heartbeat",
        _ => "unknown",
    }
}

/// Alert level names.
pub(crate) fn alert_level(l: u8) -> String {
    match l {
        1 => "warning".into(),
        2 => "fatal".into(),
        l => format!("level {l}"),
    }
}

/// Alert description names (RFC 8446 §6 and earlier).
pub(crate) fn alert(d: u8) -> String {
    let name = match d {
        0 => "close_notify",
        10 => "unexpected_message",
        20 => "bad_record_mac",
        21 => "decryption_failed",
        22 => "record_overflow",
        30 => "decompression_failure",
        40 => "handshake_failure",
        41 => "no_certificate",
        42 => "bad_certificate",
        43 => "unsupported_certificate",
        44 => "certificate_revoked",
        45 => "certificate_expired",
        46 => "certificate_unknown",
        47 => "illegal_parameter",
        48 => "unknown_ca",
        49 => "access_denied",
        50 => "decode_error",
        51 => "decrypt_error",
        60 => "export_restriction",
        70 => "protocol_version",
        71 => "insufficient_security",
        80 => "internal_error",
        86 => "inappropriate_fallback",
        90 => "user_canceled",
        100 => "no_renegotiation",
        109 => "missing_extension",
        110 => "unsupported_extension",
        111 => "certificate_unobtainable",
        112 => "unrecognized_name",
        113 => "bad_certificate_status_response",
        114 => "bad_certificate_hash_value",
        115 => "unknown_psk_identity",
        116 => "certificate_required",
        120 => "no_application_protocol",
        121 => "ech_required",
        d => return format!("alert({d})"),
    };
    name.into()
}

fn hex16(v: u16) -> String {
    format!("0x{v:04x}")
}

/// Network bytes as text for people: printable ASCII kept, anything else as "?", at most
/// `max` characters (then "…").
pub(crate) fn printable(bytes: &[u8], max: usize) -> String {
    let mut out: String = bytes
        .iter()
        .take(max)
        .map(|&b| {
            if (0x20..0x7f).contains(&b) {
                char::from(b)
            } else {
                '?'
            }
        })
        .collect();
    if bytes.len() > max {
        out.push('…');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert_eq!(version(0x0301), "TLSv1.0");
        assert_eq!(version(0x0304), "TLSv1.3");
        assert_eq!(version(0x7f1c), "TLSv1.3-draft28");
        assert_eq!(version(0x1a1a), "GREASE");
        assert_eq!(version(0x0999), "0x0999");
        assert_eq!(group(0x001d), "x25519");
        assert_eq!(group(0x11ec), "X25519MLKEM768");
        assert_eq!(group(0x4321), "0x4321");
        assert_eq!(suite(0x1302), "TLS13_AES_256_GCM_SHA384");
        assert_eq!(suite(0xc02b), "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256");
        assert_eq!(suite(0xfefe), "0xfefe");
        assert_eq!(handshake(8), "EncryptedExtensions");
        assert_eq!(handshake(99), "handshake(0x63)");
        assert_eq!(alert(0), "close_notify");
        assert_eq!(alert_level(2), "fatal");
        assert_eq!(content_type(23), "application_data");
        assert_eq!(printable(b"ab\x00c", 3), "ab?…");
        assert!(!is_grease(0x0a0b));
        assert_eq!(extension(0), "server_name");
        assert_eq!(extension(16), "application_layer_protocol_negotiation");
        assert_eq!(extension(0xfe0d), "encrypted_client_hello");
        assert_eq!(extension(0x4469), "application_settings");
        assert_eq!(extension(0x2a2a), "GREASE");
        assert_eq!(extension(0x1234), "unknown (0x1234)");
        assert_eq!(signature_scheme(0x0403), "ecdsa_secp256r1_sha256");
        assert_eq!(signature_scheme(0x0804), "rsa_pss_rsae_sha256");
        assert_eq!(signature_scheme(0x0807), "ed25519");
        assert_eq!(signature_scheme(0x7a7a), "GREASE");
        assert_eq!(signature_scheme(0x0a0b), "0x0a0b");
    }
}
