//! JA4 and JA4S fingerprints of ClientHello and ServerHello messages, after FoxIO's
//! specification (technical_details/JA4.md and JA4S.md of FoxIO-LLC/ja4), for TLS over
//! TCP. GREASE values (RFC 8701) are left out everywhere.

use std::fmt::Write;

use ring::digest;

use crate::tls::names::is_grease;

/// The SNI extension type, left out of JA4's extension hash.
const EXT_SNI: u16 = 0x0000;
/// The ALPN extension type, left out of JA4's extension hash.
const EXT_ALPN: u16 = 0x0010;
/// What a hash part reads when its list is empty.
const EMPTY_HASH: &str = "000000000000";

/// What JA4 reads from a ClientHello, as sent (GREASE included; the functions skip it).
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct ClientHelloParts<'a> {
    /// ClientHello.legacy_version.
    pub legacy_version: u16,
    /// The cipher suites in the order offered.
    pub ciphers: &'a [u16],
    /// The extension types in the order sent.
    pub extensions: &'a [u16],
    /// The supported_versions list (empty without the extension).
    pub versions: &'a [u16],
    /// The first ALPN protocol, if the extension has one.
    pub alpn: Option<&'a [u8]>,
    /// The signature_algorithms list in the order sent.
    pub signature_algorithms: &'a [u16],
}

/// What JA4S reads from a ServerHello.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct ServerHelloParts<'a> {
    /// The negotiated version: supported_versions when present, else legacy_version.
    pub version: u16,
    /// The chosen cipher suite.
    pub cipher: u16,
    /// The extension types in the order sent.
    pub extensions: &'a [u16],
    /// The ALPN protocol chosen in the ServerHello, if any.
    pub alpn: Option<&'a [u8]>,
}

/// The JA4 fingerprint, e.g. `t13d1516h2_8daaf6152771_e5627efa2ab1`.
pub(crate) fn ja4(h: &ClientHelloParts<'_>) -> String {
    let version = h
        .versions
        .iter()
        .copied()
        .filter(|&v| !is_grease(v))
        .max()
        .unwrap_or(h.legacy_version);
    let sni = if h.extensions.contains(&EXT_SNI) {
        'd'
    } else {
        'i'
    };
    let mut out = String::with_capacity(36);
    let _ = write!(
        out,
        "t{}{sni}{:02}{:02}{}_{}_{}",
        version_code(version),
        count(h.ciphers),
        count(h.extensions),
        alpn_code(h.alpn),
        hash12(&cipher_list(h.ciphers)),
        hash12(&extension_list(h.extensions, h.signature_algorithms)),
    );
    out
}

/// The JA4S fingerprint, e.g. `t120400_c030_4e8089b08790`.
pub(crate) fn ja4s(h: &ServerHelloParts<'_>) -> String {
    let mut out = String::with_capacity(25);
    let _ = write!(
        out,
        "t{}{:02}{}_{:04x}_{}",
        version_code(h.version),
        count(h.extensions),
        alpn_code(h.alpn),
        h.cipher,
        hash12(&hex_list(h.extensions.iter().copied())),
    );
    out
}

/// The two characters JA4 uses for a version; "00" for one it does not know.
fn version_code(v: u16) -> &'static str {
    match v {
        0x0304 => "13",
        0x0303 => "12",
        0x0302 => "11",
        0x0301 => "10",
        0x0300 => "s3",
        0x0002 => "s2",
        0xfeff => "d1",
        0xfefd => "d2",
        0xfefc => "d3",
        _ => "00",
    }
}

/// How many values, GREASE not counted, at most 99.
fn count(values: &[u16]) -> usize {
    values.iter().filter(|&&v| !is_grease(v)).count().min(99)
}

/// The first and last character of the first ALPN protocol ("00" without one); when
/// either is not an ASCII letter or digit, the first and last of its hex form instead.
fn alpn_code(alpn: Option<&[u8]>) -> String {
    let Some((&first, rest)) = alpn.and_then(<[u8]>::split_first) else {
        return "00".into();
    };
    let last = rest.last().copied().unwrap_or(first);
    if first.is_ascii_alphanumeric() && last.is_ascii_alphanumeric() {
        [char::from(first), char::from(last)].iter().collect()
    } else {
        let hex = b"0123456789abcdef";
        [hex[usize::from(first >> 4)], hex[usize::from(last & 0x0f)]]
            .iter()
            .map(|&b| char::from(b))
            .collect()
    }
}

/// JA4's cipher hash input: the suites sorted, as 4-digit hex joined by ",".
fn cipher_list(ciphers: &[u16]) -> String {
    let mut sorted = ciphers.to_vec();
    sorted.sort_unstable();
    hex_list(sorted.into_iter())
}

/// JA4's extension hash input: the extensions sorted, without SNI and ALPN, then "_" and
/// the signature algorithms in their order (no "_" without any). Empty when there are no
/// extensions left.
fn extension_list(extensions: &[u16], signature_algorithms: &[u16]) -> String {
    let mut sorted: Vec<u16> = extensions
        .iter()
        .copied()
        .filter(|&e| e != EXT_SNI && e != EXT_ALPN)
        .collect();
    sorted.sort_unstable();
    let mut out = hex_list(sorted.into_iter());
    let algs = hex_list(signature_algorithms.iter().copied());
    if !out.is_empty() && !algs.is_empty() {
        out.push('_');
        out.push_str(&algs);
    }
    out
}

/// The values other than GREASE as 4-digit lower-case hex, joined by ",".
fn hex_list(values: impl Iterator<Item = u16>) -> String {
    let mut out = String::new();
    for v in values.filter(|&v| !is_grease(v)) {
        if !out.is_empty() {
            out.push(',');
        }
        let _ = write!(out, "{v:04x}");
    }
    out
}

/// The first 12 hex digits of the SHA-256 of `text`, or twelve zeros for empty text.
fn hash12(text: &str) -> String {
    if text.is_empty() {
        return EMPTY_HASH.into();
    }
    let d = digest::digest(&digest::SHA256, text.as_bytes());
    hex::encode(d.as_ref().get(..6).unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The example ClientHello of the JA4 specification (technical_details/JA4.md),
    /// in the order sent, with GREASE added where Chrome sends it.
    const SPEC_CIPHERS: [u16; 16] = [
        0x2a2a, 0x1301, 0x1302, 0x1303, 0xc02b, 0xc02f, 0xc02c, 0xc030, 0xcca9, 0xcca8, 0xc013,
        0xc014, 0x009c, 0x009d, 0x002f, 0x0035,
    ];
    const SPEC_EXTENSIONS: [u16; 18] = [
        0x0a0a, 0x001b, 0x0000, 0x0033, 0x0010, 0x4469, 0x0017, 0x002d, 0x000d, 0x0005, 0x0023,
        0x0012, 0x002b, 0xff01, 0x000b, 0x000a, 0x0015, 0xfafa,
    ];
    const SPEC_SIGALGS: [u16; 8] = [
        0x0403, 0x0804, 0x0401, 0x0503, 0x0805, 0x0501, 0x0806, 0x0601,
    ];

    #[test]
    fn spec_hash_inputs_and_hashes() {
        let ciphers = cipher_list(&SPEC_CIPHERS);
        assert_eq!(
            ciphers,
            "002f,0035,009c,009d,1301,1302,1303,c013,c014,c02b,c02c,c02f,c030,cca8,cca9"
        );
        assert_eq!(hash12(&ciphers), "8daaf6152771");
        let exts = extension_list(&SPEC_EXTENSIONS, &SPEC_SIGALGS);
        assert_eq!(
            exts,
            "0005,000a,000b,000d,0012,0015,0017,001b,0023,002b,002d,0033,4469,ff01_\
             0403,0804,0401,0503,0805,0501,0806,0601"
        );
        assert_eq!(hash12(&exts), "e5627efa2ab1");
        let full = digest::digest(&digest::SHA256, exts.as_bytes());
        assert_eq!(
            hex::encode(full.as_ref()),
            "e5627efa2ab19723084c1033a96c694a45826ab5a460d2d3fd5ffcfe97161c95"
        );
        // Without signature algorithms the list ends without "_".
        let no_algs = extension_list(&SPEC_EXTENSIONS, &[]);
        assert_eq!(
            no_algs,
            "0005,000a,000b,000d,0012,0015,0017,001b,0023,002b,002d,0033,4469,ff01"
        );
        assert_eq!(hash12(&no_algs), "6d807ffa2a79");
        assert_eq!(hash12(""), "000000000000");
    }

    #[test]
    fn spec_example_fingerprint() {
        let hello = ClientHelloParts {
            legacy_version: 0x0303,
            ciphers: &SPEC_CIPHERS,
            extensions: &SPEC_EXTENSIONS,
            versions: &[0x3a3a, 0x0304, 0x0303],
            alpn: Some(b"h2"),
            signature_algorithms: &SPEC_SIGALGS,
        };
        assert_eq!(ja4(&hello), "t13d1516h2_8daaf6152771_e5627efa2ab1");
        // No SNI, no ALPN, no supported_versions, no ciphers, no extensions.
        let bare = ClientHelloParts {
            legacy_version: 0x0301,
            ..ClientHelloParts::default()
        };
        assert_eq!(ja4(&bare), "t10i000000_000000000000_000000000000");
    }

    #[test]
    fn version_and_counts() {
        assert_eq!(version_code(0x0300), "s3");
        assert_eq!(version_code(0x7f1c), "00");
        let many: Vec<u16> = (0x0100..0x0200).collect();
        assert_eq!(count(&many), 99);
        assert_eq!(count(&[0x0a0a, 0x1301]), 1);
        // supported_versions holding only GREASE: the legacy version.
        let hello = ClientHelloParts {
            legacy_version: 0x0303,
            versions: &[0x5a5a],
            extensions: &[0x0000],
            ..ClientHelloParts::default()
        };
        assert!(ja4(&hello).starts_with("t12d0001"));
    }

    #[test]
    fn alpn_codes_from_the_spec() {
        assert_eq!(alpn_code(None), "00");
        assert_eq!(alpn_code(Some(b"")), "00");
        assert_eq!(alpn_code(Some(b"h2")), "h2");
        assert_eq!(alpn_code(Some(b"http/1.1")), "h1");
        assert_eq!(alpn_code(Some(b"x")), "xx");
        assert_eq!(alpn_code(Some(&[0xab])), "ab");
        assert_eq!(alpn_code(Some(&[0xab, 0xcd])), "ad");
        assert_eq!(alpn_code(Some(&[0x30, 0xab])), "3b");
        assert_eq!(alpn_code(Some(&[0x30, 0x31, 0xab, 0xcd])), "3d");
        assert_eq!(alpn_code(Some(&[0x30, 0xab, 0xcd, 0x31])), "01");
    }

    #[test]
    fn ja4s_spec_example() {
        let exts = [0x0005, 0x0017, 0xff01, 0x0000];
        assert_eq!(hex_list(exts.iter().copied()), "0005,0017,ff01,0000");
        let sh = ServerHelloParts {
            version: 0x0303,
            cipher: 0xc030,
            extensions: &exts,
            alpn: None,
        };
        assert_eq!(ja4s(&sh), "t120400_c030_4e8089b08790");
        let tls13 = ServerHelloParts {
            version: 0x0304,
            cipher: 0x1301,
            extensions: &[0x002b, 0x0033],
            alpn: Some(b"h2"),
        };
        let s = ja4s(&tls13);
        assert!(s.starts_with("t1302h2_1301_"), "{s}");
        assert_eq!(s.len(), 25);
    }
}
