//! The lab's certificates: a CA ("fetchscope lab CA") made at start, and the HTTPS
//! server's certificate for the lab's names, issued by it.
//!
//! Both use Ed25519 keys. Their signatures have a fixed length, so with a fixed seed the
//! certificates (and the TLS records carrying them) have the same length on every run.
//! Keys and serial numbers are drawn from the `"lab-pki"` random stream.

use std::time::{SystemTime, UNIX_EPOCH};

use rand::RngCore;
use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose, PKCS_ED25519, SerialNumber,
};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use time::OffsetDateTime;

use crate::config::CertValidity;
use crate::error::LabError;

/// Subject common name of the lab's CA.
pub(crate) const CA_NAME: &str = "fetchscope lab CA";

/// PKCS#8 v1 (RFC 8410) prefix of an Ed25519 private key; the 32-byte seed follows.
const ED25519_PKCS8_PREFIX: [u8; 16] = [
    0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04, 0x20,
];

/// Length of the certificates' serial numbers, in bytes.
const SERIAL_LEN: usize = 16;

/// The lab's CA and the server's certificate and key.
#[derive(Debug)]
pub(crate) struct LabPki {
    /// The CA certificate (what a lab client trusts).
    pub ca_cert: CertificateDer<'static>,
    /// The CA certificate in PEM.
    pub ca_pem: String,
    /// The server's certificate, issued by the CA.
    pub server_cert: CertificateDer<'static>,
    /// Intermediate CA certificates sent after the server's, nearest to it first (empty
    /// but for `cert-chain-too-long`).
    pub intermediates: Vec<CertificateDer<'static>>,
    /// The server's private key (PKCS#8).
    pub server_key: PrivateKeyDer<'static>,
}

/// Which server certificate the lab presents (the TLS certificate faults).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ServerCertKind {
    /// Issued by the lab CA for the lab's names.
    Normal,
    /// Issued for the lab's names by a second CA that no client trusts.
    UnknownCa,
    /// Issued by the lab CA for [`WRONG_NAME`] only.
    WrongName,
    /// Issued by the lab CA for the lab's names, valid only in this (past) period.
    Expired(CertValidity),
    /// For the lab's names, signed by its own key: no CA vouches for it.
    SelfSigned,
    /// Issued by the lab CA through a chain of [`LONG_CHAIN_INTERMEDIATES`] intermediate
    /// CAs, more than a verifier follows.
    LongChain,
    /// Issued by the lab CA for the lab's names, for client authentication only.
    ClientAuthOnly,
}

/// Intermediate CAs in the `cert-chain-too-long` chain (webpki follows at most 6).
pub(crate) const LONG_CHAIN_INTERMEDIATES: usize = 8;

/// The only name in the certificate of the `cert-wrong-name` fault.
pub(crate) const WRONG_NAME: &str = "other.test";

/// Subject common name of the CA behind the `cert-unknown-ca` fault.
const UNTRUSTED_CA_NAME: &str = "fetchscope untrusted CA";

impl LabPki {
    /// Makes the CA and a server certificate of `kind` for `names`, drawing keys and
    /// serials from `rng`. The lab CA (what clients trust) is the same for every kind.
    pub fn generate(
        names: &[&str],
        validity: CertValidity,
        kind: ServerCertKind,
        rng: &mut dyn RngCore,
    ) -> Result<LabPki, LabError> {
        let (mut ca_params, ca_key) = ca(CA_NAME, validity, rng)?;
        if kind == ServerCertKind::LongChain {
            // The path length is what the verifier's depth limit rejects, not the CA's.
            ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        }
        let ca_cert = ca_params.self_signed(&ca_key)?;
        let ca_pem = ca_cert.pem();
        let ca_der = ca_cert.der().clone();

        let (other_ca_params, other_ca_key) = match kind {
            ServerCertKind::UnknownCa => {
                let (p, k) = ca(UNTRUSTED_CA_NAME, validity, rng)?;
                (Some(p), Some(k))
            }
            _ => (None, None),
        };

        let server_key = ed25519_key(rng)?;
        let server_names: Vec<String> = match kind {
            ServerCertKind::WrongName => vec![WRONG_NAME.to_owned()],
            _ => names.iter().map(|n| (*n).to_owned()).collect(),
        };
        let server_validity = match kind {
            ServerCertKind::Expired(v) => v,
            _ => validity,
        };
        let common_name = server_names
            .first()
            .cloned()
            .unwrap_or_else(|| "lab".into());
        let mut params = CertificateParams::new(server_names)?;
        params.distinguished_name = distinguished_name(&common_name);
        params.is_ca = IsCa::ExplicitNoCa;
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = match kind {
            ServerCertKind::ClientAuthOnly => vec![ExtendedKeyUsagePurpose::ClientAuth],
            _ => vec![ExtendedKeyUsagePurpose::ServerAuth],
        };
        // cert-chain-too-long: lab CA → intermediate 1 → … → intermediate N → server.
        let mut intermediates = Vec::new();
        let mut issuer = (ca_params, ca_key);
        if kind == ServerCertKind::LongChain {
            for i in 1..=LONG_CHAIN_INTERMEDIATES {
                let (mut p, k) = ca(&format!("fetchscope intermediate CA {i}"), validity, rng)?;
                p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
                p.use_authority_key_identifier_extension = true;
                let cert = p.signed_by(&k, &Issuer::new(issuer.0, &issuer.1))?;
                intermediates.insert(0, cert.der().clone());
                issuer = (p, k);
            }
        }
        let (ca_params, ca_key) = issuer;
        params.serial_number = Some(serial(rng));
        params.not_before = to_datetime(server_validity.not_before)?;
        params.not_after = to_datetime(server_validity.not_after)?;
        let server_cert = match (kind, other_ca_params, other_ca_key) {
            (ServerCertKind::SelfSigned, _, _) => params.self_signed(&server_key)?,
            (_, Some(other_params), Some(other_key)) => {
                params.use_authority_key_identifier_extension = true;
                params.signed_by(&server_key, &Issuer::new(other_params, &other_key))?
            }
            _ => {
                params.use_authority_key_identifier_extension = true;
                params.signed_by(&server_key, &Issuer::new(ca_params, &ca_key))?
            }
        };

        Ok(LabPki {
            ca_pem,
            ca_cert: ca_der,
            server_cert: server_cert.der().clone(),
            intermediates,
            server_key: PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(server_key.serialize_der())),
        })
    }
}

/// The parameters and key of a CA called `name`, drawing its key and serial from `rng`.
fn ca(
    name: &str,
    validity: CertValidity,
    rng: &mut dyn RngCore,
) -> Result<(CertificateParams, KeyPair), LabError> {
    let key = ed25519_key(rng)?;
    let mut params = CertificateParams::default();
    params.distinguished_name = distinguished_name(name);
    params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    params.serial_number = Some(serial(rng));
    params.not_before = to_datetime(validity.not_before)?;
    params.not_after = to_datetime(validity.not_after)?;
    Ok((params, key))
}

/// An Ed25519 key whose 32-byte seed comes from `rng`.
fn ed25519_key(rng: &mut dyn RngCore) -> Result<KeyPair, LabError> {
    let mut der = Vec::with_capacity(ED25519_PKCS8_PREFIX.len() + 32);
    der.extend_from_slice(&ED25519_PKCS8_PREFIX);
    let mut seed = [0u8; 32];
    rng.fill_bytes(&mut seed);
    der.extend_from_slice(&seed);
    let pkcs8 = PrivatePkcs8KeyDer::from(der);
    Ok(KeyPair::from_pkcs8_der_and_sign_algo(
        &pkcs8,
        &PKCS_ED25519,
    )?)
}

/// A positive serial number of exactly [`SERIAL_LEN`] bytes (the first byte is in
/// 0x40..=0x7f, so DER neither adds a sign byte nor strips a leading zero).
fn serial(rng: &mut dyn RngCore) -> SerialNumber {
    let mut bytes = [0u8; SERIAL_LEN];
    rng.fill_bytes(&mut bytes);
    bytes[0] = (bytes[0] & 0x3f) | 0x40;
    SerialNumber::from_slice(&bytes)
}

fn distinguished_name(common_name: &str) -> DistinguishedName {
    let mut dn = DistinguishedName::new();
    dn.push(DnType::OrganizationName, "fetchscope lab");
    dn.push(DnType::CommonName, common_name);
    dn
}

/// `t` as a UTC date, to whole seconds.
fn to_datetime(t: SystemTime) -> Result<OffsetDateTime, LabError> {
    let secs = match t.duration_since(UNIX_EPOCH) {
        Ok(d) => i64::try_from(d.as_secs()).ok(),
        Err(e) => i64::try_from(e.duration().as_secs()).ok().map(|s| -s),
    };
    secs.and_then(|s| OffsetDateTime::from_unix_timestamp(s).ok())
        .ok_or_else(|| LabError::Config(format!("certificate date {t:?} is out of range")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand::rngs::StdRng;
    use std::time::Duration;

    fn validity() -> CertValidity {
        CertValidity::around(UNIX_EPOCH + Duration::from_secs(1_800_000_000))
    }

    #[test]
    fn same_seed_same_certificates_other_seed_same_lengths() {
        let names = ["www.example.test", "example.test"];
        let normal = ServerCertKind::Normal;
        let a =
            LabPki::generate(&names, validity(), normal, &mut StdRng::seed_from_u64(1)).unwrap();
        let b =
            LabPki::generate(&names, validity(), normal, &mut StdRng::seed_from_u64(1)).unwrap();
        let c =
            LabPki::generate(&names, validity(), normal, &mut StdRng::seed_from_u64(2)).unwrap();
        assert_eq!(a.ca_cert, b.ca_cert);
        assert_eq!(a.server_cert, b.server_cert);
        assert_ne!(a.server_cert, c.server_cert);
        assert_eq!(a.server_cert.len(), c.server_cert.len());
        assert_eq!(a.ca_cert.len(), c.ca_cert.len());
        assert!(a.ca_pem.starts_with("-----BEGIN CERTIFICATE-----"));
    }

    #[test]
    fn serials_are_positive_and_fixed_length() {
        let mut rng = StdRng::seed_from_u64(9);
        for _ in 0..100 {
            let s = serial(&mut rng).to_bytes();
            assert_eq!(s.len(), SERIAL_LEN);
            assert!((0x40..=0x7f).contains(&s[0]));
        }
    }

    #[test]
    fn dates_before_1970_work_and_absurd_ones_are_errors() {
        let early = UNIX_EPOCH - Duration::from_secs(86_400);
        assert_eq!(to_datetime(early).unwrap().year(), 1969);
        let absurd = UNIX_EPOCH + Duration::from_secs(u64::MAX / 4);
        assert!(to_datetime(absurd).is_err());
    }

    /// Verifies `pki`'s server certificate for `name` at `now` the way a client trusting
    /// only the lab CA does.
    fn verify(pki: &LabPki, name: &str, now: SystemTime) -> Result<(), rustls::Error> {
        use rustls::client::WebPkiServerVerifier;
        use rustls::client::danger::ServerCertVerifier;
        use rustls::pki_types::{ServerName, UnixTime};
        let mut roots = rustls::RootCertStore::empty();
        roots.add(pki.ca_cert.clone()).unwrap();
        let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
        let verifier = WebPkiServerVerifier::builder_with_provider(roots.into(), provider)
            .build()
            .unwrap();
        verifier
            .verify_server_cert(
                &pki.server_cert,
                &[],
                &ServerName::try_from(name.to_owned()).unwrap(),
                &[],
                UnixTime::since_unix_epoch(now.duration_since(UNIX_EPOCH).unwrap()),
            )
            .map(|_| ())
    }

    #[test]
    fn each_kind_fails_verification_its_own_way_and_the_ca_stays_the_same() {
        use rustls::CertificateError as C;
        let names = ["www.example.test", "example.test"];
        let now = UNIX_EPOCH + Duration::from_secs(1_800_000_000);
        let make = |kind| {
            LabPki::generate(&names, validity(), kind, &mut StdRng::seed_from_u64(5)).unwrap()
        };
        let normal = make(ServerCertKind::Normal);
        verify(&normal, "www.example.test", now).unwrap();
        let expired_period = CertValidity {
            not_before: now - Duration::from_secs(400 * 86_400),
            not_after: now - Duration::from_secs(30 * 86_400),
        };
        let cases = [
            (ServerCertKind::UnknownCa, "UnknownIssuer"),
            (ServerCertKind::WrongName, "NotValidForName"),
            (ServerCertKind::Expired(expired_period), "Expired"),
            (ServerCertKind::SelfSigned, "UnknownIssuer"),
        ];
        for (kind, want) in cases {
            let pki = make(kind);
            assert_eq!(
                pki.ca_cert, normal.ca_cert,
                "{kind:?}: the trusted CA changed"
            );
            assert_ne!(pki.server_cert, normal.server_cert);
            match verify(&pki, "www.example.test", now) {
                Err(rustls::Error::InvalidCertificate(e)) => {
                    let got = format!("{e:?}");
                    assert!(got.starts_with(want), "{kind:?}: {got}");
                    if want == "Expired" {
                        assert!(matches!(e, C::Expired | C::ExpiredContext { .. }));
                    }
                }
                other => panic!("{kind:?}: {other:?}"),
            }
        }
        // the wrong-name certificate is fine for the name it does carry
        verify(&make(ServerCertKind::WrongName), WRONG_NAME, now).unwrap();
    }
}
