//! What a person wants to know about a certificate: subject, issuer, validity, names.

use rustls::pki_types::CertificateDer;
use time::format_description::well_known::Rfc3339;
use x509_parser::extensions::GeneralName;
use x509_parser::prelude::{FromDer, X509Certificate};

use crate::event::CertificateInfo;

/// Describes one DER certificate, or `None` if it does not parse.
pub fn describe(der: &CertificateDer<'_>) -> Option<CertificateInfo> {
    let (_, cert) = X509Certificate::from_der(der.as_ref()).ok()?;
    let validity = cert.validity();
    let fmt = |t: &x509_parser::time::ASN1Time| {
        t.to_datetime()
            .format(&Rfc3339)
            .unwrap_or_else(|_| t.to_string())
    };
    let mut names = Vec::new();
    if let Ok(Some(san)) = cert.subject_alternative_name() {
        for n in &san.value.general_names {
            match n {
                GeneralName::DNSName(d) => names.push((*d).to_string()),
                GeneralName::IPAddress(ip) => match ip.len() {
                    4 => {
                        let mut a = [0u8; 4];
                        a.copy_from_slice(ip);
                        names.push(std::net::IpAddr::from(a).to_string());
                    }
                    16 => {
                        let mut a = [0u8; 16];
                        a.copy_from_slice(ip);
                        names.push(std::net::IpAddr::from(a).to_string());
                    }
                    _ => {}
                },
                _ => {}
            }
        }
    }
    Some(CertificateInfo {
        subject: cert.subject().to_string(),
        issuer: cert.issuer().to_string(),
        not_before: fmt(&validity.not_before),
        not_after: fmt(&validity.not_after),
        names,
    })
}
