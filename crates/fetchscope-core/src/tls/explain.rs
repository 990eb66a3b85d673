//! TLS failures in words: each rustls error becomes one sentence that names the cause as
//! fetchscope knows it and advice that fits where the trust anchors came from. No `Debug`
//! text of a library type reaches a person.

use rustls::pki_types::UnixTime;
use rustls::{AlertDescription, CertificateError, ExtendedKeyPurpose};

/// Where the trust anchors of a fetch came from: decides the advice for certificate errors.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum TrustSource {
    /// The built-in lab: only the lab's own CA is trusted.
    Lab,
    /// The Mozilla roots only.
    #[default]
    WebRoots,
    /// The Mozilla roots plus the certificates of `--cacert`.
    WebRootsAndCacert,
}

/// The sentence for a certificate the verifier rejected.
pub fn certificate(c: &CertificateError, host: &str, trust: TrustSource) -> String {
    let anchor_hint = match trust {
        TrustSource::Lab => {
            "the built-in lab trusts only its own CA, and this certificate does not come from it"
        }
        TrustSource::WebRoots => {
            "if this is your own test server, pass its CA certificate with --cacert FILE"
        }
        TrustSource::WebRootsAndCacert => {
            "the --cacert file given does not hold the CA that issued it: check that it is the right CA certificate"
        }
    };
    match c {
        CertificateError::UnknownIssuer => format!(
            "the certificate of {host} was issued by a certificate authority that is not trusted (unknown issuer); {anchor_hint}"
        ),
        CertificateError::NotValidForName => format!(
            "the certificate the server sent is not valid for the name {host}; check the URL or the server's configuration"
        ),
        CertificateError::NotValidForNameContext { presented, .. } => format!(
            "the certificate the server sent is not valid for the name {host}: it names {}; check the URL or the server's configuration",
            names_in_words(presented)
        ),
        CertificateError::Expired => {
            format!("the certificate of {host} has expired; the server must renew it")
        }
        CertificateError::ExpiredContext { time, not_after } => format!(
            "the certificate of {host} expired on {} and it is now {}; the server must renew it",
            date(*not_after),
            date(*time)
        ),
        CertificateError::NotValidYet => {
            format!("the certificate of {host} is not valid yet; check this machine's clock")
        }
        CertificateError::NotValidYetContext { time, not_before } => format!(
            "the certificate of {host} is valid only from {} but it is now {}; check this machine's clock and the server's",
            date(*not_before),
            date(*time)
        ),
        CertificateError::BadSignature => format!(
            "a signature in the certificate chain of {host} does not verify: the chain is corrupt or forged"
        ),
        CertificateError::BadEncoding => format!(
            "the certificate of {host} is not correctly encoded (bad DER); the server's certificate file is damaged"
        ),
        CertificateError::Revoked => {
            format!("the certificate of {host} has been revoked by its issuer")
        }
        CertificateError::InvalidPurpose => format!(
            "the certificate of {host} is not allowed for TLS servers (its extended key usage lacks serverAuth); the server needs a server certificate"
        ),
        CertificateError::InvalidPurposeContext { presented, .. } => format!(
            "the certificate of {host} is not allowed for TLS servers: its extended key usage allows only {}, not serverAuth; the server needs a certificate issued for server authentication",
            purposes_in_words(presented)
        ),
        CertificateError::UnhandledCriticalExtension => format!(
            "the certificate of {host} has a critical extension that the verifier does not understand, so it must be rejected"
        ),
        CertificateError::UnsupportedSignatureAlgorithmContext { .. }
        | CertificateError::UnsupportedSignatureAlgorithmForPublicKeyContext { .. } => format!(
            "the certificate chain of {host} is signed with an algorithm fetchscope does not accept (rustls with ring supports ECDSA, Ed25519 and RSA with SHA-256 or better)"
        ),
        CertificateError::Other(other) => {
            let text = other.to_string();
            let words = camel_to_words(text.trim());
            match text.trim() {
                "MaximumPathDepthExceeded" => format!(
                    "the certificate chain of {host} is too long: no path to a trusted root within 6 intermediate certificates (webpki's limit); the server sends too many intermediates"
                ),
                "MaximumSignatureChecksExceeded" | "MaximumPathBuildCallsExceeded" => format!(
                    "the certificate chain of {host} needs too much work to verify ({words}); the server sends too many or unrelated intermediate certificates"
                ),
                _ => format!("the certificate of {host} was rejected: {words}; {anchor_hint}"),
            }
        }
        other => format!(
            "the certificate of {host} was rejected: {}; {anchor_hint}",
            camel_to_words(&format!("{other:?}"))
        ),
    }
}

/// The sentence for a fatal alert the server sent.
pub fn alert(a: AlertDescription) -> String {
    let name = alert_name(a);
    let why = match a {
        AlertDescription::HandshakeFailure => {
            ": it found no protocol version, cipher suite or key exchange it shares with fetchscope"
        }
        AlertDescription::ProtocolVersion => ": it does not speak TLS 1.2 or 1.3",
        AlertDescription::UnrecognisedName => {
            ": it has no certificate for the name asked for (SNI)"
        }
        AlertDescription::NoApplicationProtocol => ": it does not speak HTTP/1.1 (ALPN)",
        AlertDescription::CertificateRequired => {
            ": it wants a client certificate, and fetchscope has none to give"
        }
        AlertDescription::InternalError => ": something broke inside the server",
        _ => "",
    };
    format!("'{name}'{why}")
}

/// The TLS name of an alert (`handshake_failure`), as RFC 8446 spells it.
pub fn alert_name(a: AlertDescription) -> String {
    match a {
        AlertDescription::Unknown(n) => format!("unknown alert {n}"),
        other => camel_to_words(&format!("{other:?}")).replace(' ', "_"),
    }
}

/// The sentence for a server that broke the TLS protocol (after "the server broke the TLS
/// protocol: ").
pub fn protocol(e: &rustls::Error) -> String {
    use rustls::InvalidMessage as M;
    match e {
        rustls::Error::InvalidMessage(M::MessageTooLarge) | rustls::Error::PeerSentOversizedRecord => {
            "it sent a TLS record longer than TLS allows (at most 16 KiB of data plus 2 KiB of overhead, 18432 bytes); it is not a TLS server, or a broken one".to_string()
        }
        rustls::Error::InvalidMessage(M::InvalidContentType) => {
            "it sent bytes that are not a TLS record (is it a plain-text service? try http://)".to_string()
        }
        rustls::Error::InvalidMessage(m) => format!(
            "it sent a malformed TLS message ({})",
            camel_to_words(&first_word(&format!("{m:?}")))
        ),
        rustls::Error::InappropriateMessage { got_type, .. } => format!(
            "it sent a {} record where the handshake expected something else",
            camel_to_words(&format!("{got_type:?}"))
        ),
        rustls::Error::InappropriateHandshakeMessage { got_type, .. } => format!(
            "it sent a {} message out of turn",
            camel_to_words(&format!("{got_type:?}"))
        ),
        rustls::Error::PeerMisbehaved(m) => {
            camel_to_words(&first_word(&format!("{m:?}")))
        }
        rustls::Error::PeerIncompatible(m) => format!(
            "it is not compatible with fetchscope's TLS ({})",
            camel_to_words(&first_word(&format!("{m:?}")))
        ),
        rustls::Error::DecryptError => {
            "a record it sent does not decrypt (bad record MAC)".to_string()
        }
        rustls::Error::NoCertificatesPresented => "it sent no certificate".to_string(),
        rustls::Error::NoApplicationProtocol => {
            "it agreed on no application protocol (ALPN http/1.1)".to_string()
        }
        other => other.to_string(),
    }
}

/// `CertExpired` → `cert expired`; text that is not one identifier is kept as it is.
pub fn camel_to_words(s: &str) -> String {
    if s.is_empty() || !s.chars().all(|c| c.is_ascii_alphanumeric()) {
        return s.replace(['{', '}', '(', ')', '[', ']', '"'], "");
    }
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if c.is_ascii_uppercase() && i > 0 {
            out.push(' ');
        }
        out.push(c.to_ascii_lowercase());
    }
    out
}

/// The variant name of a `Debug` text (`MissingData("x")` → `MissingData`).
fn first_word(s: &str) -> String {
    s.chars()
        .take_while(|c| c.is_ascii_alphanumeric())
        .collect()
}

/// A certificate time as a date and time in UTC.
fn date(t: UnixTime) -> String {
    let secs = i64::try_from(t.as_secs()).unwrap_or(i64::MAX);
    match time::OffsetDateTime::from_unix_timestamp(secs) {
        Ok(dt) => {
            let (y, m, d) = (dt.year(), u8::from(dt.month()), dt.day());
            format!(
                "{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02} UTC",
                dt.hour(),
                dt.minute(),
                dt.second()
            )
        }
        Err(_) => format!("{secs} s after 1970"),
    }
}

/// The names a certificate presents (`DnsName("a")` as rustls spells them), in words.
fn names_in_words(presented: &[String]) -> String {
    let names: Vec<String> = presented
        .iter()
        .map(|p| {
            let inner = p
                .split_once('(')
                .map(|(_, rest)| rest.trim_end_matches(')'))
                .unwrap_or(p);
            inner.trim_matches('"').replace("\\\"", "").to_string()
        })
        .collect();
    if names.is_empty() {
        "no name at all".to_string()
    } else {
        names.join(", ")
    }
}

/// Extended key purposes in words.
fn purposes_in_words(presented: &[ExtendedKeyPurpose]) -> String {
    let words: Vec<String> = presented
        .iter()
        .map(|p| match p {
            ExtendedKeyPurpose::ClientAuth => "clientAuth".to_string(),
            ExtendedKeyPurpose::ServerAuth => "serverAuth".to_string(),
            ExtendedKeyPurpose::Other(oid) => oid
                .iter()
                .map(|n| n.to_string())
                .collect::<Vec<_>>()
                .join("."),
        })
        .collect();
    if words.is_empty() {
        "nothing".to_string()
    } else {
        words.join(" and ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn no_debug(s: &str) {
        assert!(!s.contains("{ ") && !s.contains("(["), "Debug text in: {s}");
    }

    #[test]
    fn expiry_names_two_dates() {
        let c = CertificateError::ExpiredContext {
            time: UnixTime::since_unix_epoch(std::time::Duration::from_secs(1_796_220_547)),
            not_after: UnixTime::since_unix_epoch(std::time::Duration::from_secs(1_793_628_547)),
        };
        let s = certificate(&c, "www.example.test", TrustSource::Lab);
        no_debug(&s);
        assert!(s.contains("expired on 2026-11-02"), "{s}");
        assert!(s.contains("it is now 2026-12-02"), "{s}");
    }

    #[test]
    fn wrong_name_lists_the_names() {
        let c = CertificateError::NotValidForNameContext {
            expected: rustls::pki_types::ServerName::try_from("10.88.0.1")
                .expect("ip")
                .to_owned(),
            presented: vec![
                "DnsName(\"www.example.test\")".to_string(),
                "DnsName(\"example.test\")".to_string(),
            ],
        };
        let s = certificate(&c, "10.88.0.1", TrustSource::Lab);
        no_debug(&s);
        assert!(s.contains("it names www.example.test, example.test"), "{s}");
    }

    #[test]
    fn client_auth_only_is_named_without_cacert_advice() {
        let c = CertificateError::InvalidPurposeContext {
            required: ExtendedKeyPurpose::ServerAuth,
            presented: vec![ExtendedKeyPurpose::ClientAuth],
        };
        let s = certificate(&c, "h", TrustSource::WebRootsAndCacert);
        no_debug(&s);
        assert!(s.contains("allows only clientAuth"), "{s}");
        assert!(!s.contains("--cacert"), "{s}");
    }

    #[test]
    fn unknown_issuer_advice_fits_the_trust_source() {
        let c = CertificateError::UnknownIssuer;
        assert!(certificate(&c, "h", TrustSource::WebRoots).contains("pass its CA certificate"));
        assert!(certificate(&c, "h", TrustSource::WebRootsAndCacert).contains("right CA"));
        assert!(certificate(&c, "h", TrustSource::Lab).contains("lab trusts only"));
    }

    #[test]
    fn protocol_errors_are_words() {
        let s = protocol(&rustls::Error::InvalidMessage(
            rustls::InvalidMessage::MessageTooLarge,
        ));
        assert!(s.contains("18432"), "{s}");
        let s = protocol(&rustls::Error::InvalidMessage(
            rustls::InvalidMessage::MissingData("x"),
        ));
        no_debug(&s);
        assert!(s.contains("missing data"), "{s}");
        assert_eq!(
            alert_name(AlertDescription::HandshakeFailure),
            "handshake_failure"
        );
        assert_eq!(
            camel_to_words("MaximumPathDepthExceeded"),
            "maximum path depth exceeded"
        );
    }
}
