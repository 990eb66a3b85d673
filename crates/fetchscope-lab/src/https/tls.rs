//! The rustls server configuration of the lab's HTTPS server.

use std::sync::Arc;

use fetchscope_core::Randomness;
use rustls::ServerConfig;

use crate::error::LabError;
use crate::pki::LabPki;

/// TLS 1.3 and 1.2 with the `"lab-tls"` provider, the lab server certificate, ALPN
/// `http/1.1`.
pub(crate) fn server_config(
    pki: &LabPki,
    randomness: &Randomness,
) -> Result<Arc<ServerConfig>, LabError> {
    let mut config = ServerConfig::builder_with_provider(randomness.crypto_provider("lab-tls"))
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_single_cert(
            std::iter::once(pki.server_cert.clone())
                .chain(pki.intermediates.iter().cloned())
                .collect(),
            pki.server_key.clone_key(),
        )?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}
