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
    /// The server's private key (PKCS#8).
    pub server_key: PrivateKeyDer<'static>,
}

impl LabPki {
    /// Makes the CA and a server certificate for `names`, drawing keys and serials from `rng`.
    pub fn generate(
        names: &[&str],
        validity: CertValidity,
        rng: &mut dyn RngCore,
    ) -> Result<LabPki, LabError> {
        let not_before = to_datetime(validity.not_before)?;
        let not_after = to_datetime(validity.not_after)?;

        let ca_key = ed25519_key(rng)?;
        let mut ca_params = CertificateParams::default();
        ca_params.distinguished_name = distinguished_name(CA_NAME);
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
        ca_params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        ca_params.serial_number = Some(serial(rng));
        ca_params.not_before = not_before;
        ca_params.not_after = not_after;
        let ca_cert = ca_params.self_signed(&ca_key)?;
        let issuer = Issuer::new(ca_params, &ca_key);

        let server_key = ed25519_key(rng)?;
        let owned_names: Vec<String> = names.iter().map(|n| (*n).to_owned()).collect();
        let mut params = CertificateParams::new(owned_names)?;
        params.distinguished_name = distinguished_name(names.first().copied().unwrap_or("lab"));
        params.is_ca = IsCa::ExplicitNoCa;
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        params.use_authority_key_identifier_extension = true;
        params.serial_number = Some(serial(rng));
        params.not_before = not_before;
        params.not_after = not_after;
        let server_cert = params.signed_by(&server_key, &issuer)?;

        Ok(LabPki {
            ca_pem: ca_cert.pem(),
            ca_cert: ca_cert.der().clone(),
            server_cert: server_cert.der().clone(),
            server_key: PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(server_key.serialize_der())),
        })
    }
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
        let a = LabPki::generate(&names, validity(), &mut StdRng::seed_from_u64(1)).unwrap();
        let b = LabPki::generate(&names, validity(), &mut StdRng::seed_from_u64(1)).unwrap();
        let c = LabPki::generate(&names, validity(), &mut StdRng::seed_from_u64(2)).unwrap();
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
}
