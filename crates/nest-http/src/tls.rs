//! rustls setup. The rustls `ClientConfig` is built once per run (explicitly with the ring
//! provider, no process-global state) and shared by every connection of every VU; this
//! module also holds the "accept any certificate" verifier used for `insecure` runs.

use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::WebPkiSupportedAlgorithms;
use rustls::{DigitallySignedStruct, RootCertStore, SignatureScheme};
use rustls_pki_types::{CertificateDer, ServerName, UnixTime};

use crate::Error;

/// The only ALPN protocol we offer: this client speaks HTTP/1.1.
const ALPN_HTTP1: &[u8] = b"http/1.1";

/// A root store holding the standard web roots (webpki-roots).
pub(crate) fn web_roots() -> RootCertStore {
    RootCertStore { roots: webpki_roots::TLS_SERVER_ROOTS.to_vec() }
}

/// Builds the shared rustls client configuration.
///
/// With `insecure`, any server certificate is accepted (handshake signatures are still
/// checked, so the peer must hold the key of the certificate it presents).
pub(crate) fn build(insecure: bool, roots: &RootCertStore) -> Result<Arc<rustls::ClientConfig>, Error> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let algorithms = provider.signature_verification_algorithms;
    let builder = rustls::ClientConfig::builder_with_provider(provider).with_safe_default_protocol_versions()?;
    let mut config = if insecure {
        builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(AcceptAnyCert { algorithms }))
            .with_no_client_auth()
    } else {
        builder.with_root_certificates(roots.clone()).with_no_client_auth()
    };
    config.alpn_protocols = vec![ALPN_HTTP1.to_vec()];
    Ok(Arc::new(config))
}

/// Certificate verifier for `insecure` mode: trusts every certificate chain and host name.
#[derive(Debug)]
struct AcceptAnyCert {
    algorithms: WebPkiSupportedAlgorithms,
}

impl ServerCertVerifier for AcceptAnyCert {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builds_both_modes_with_http11_alpn() {
        for insecure in [false, true] {
            let cfg = build(insecure, &web_roots()).unwrap();
            assert_eq!(cfg.alpn_protocols, vec![b"http/1.1".to_vec()]);
        }
    }

    #[test]
    fn web_roots_are_loaded() {
        assert!(!web_roots().is_empty());
    }
}
