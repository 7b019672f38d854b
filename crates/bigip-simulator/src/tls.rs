//! TLS for the simulator: a generated CA and server certificate, or PEM files.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair, KeyUsagePurpose,
};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::ServerConfig;

/// Names the generated server certificate is valid for.
const SERVER_NAMES: [&str; 2] = ["127.0.0.1", "localhost"];

#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("generating the self-signed certificate failed: {0}")]
    Generate(#[from] rcgen::Error),
    #[error("cannot read {path}: {source}")]
    Read { path: PathBuf, source: std::io::Error },
    #[error("{path} contains no PEM certificate")]
    NoCertificate { path: PathBuf },
    #[error("{path} contains no PEM private key")]
    NoPrivateKey { path: PathBuf },
    #[error("the certificate and key are not usable for TLS: {0}")]
    Config(#[from] rustls::Error),
}

/// A server TLS configuration, plus the CA to trust when the certificate was generated.
pub(super) struct TlsSetup {
    pub(super) server_config: Arc<ServerConfig>,
    pub(super) ca_certificate_pem: Option<String>,
}

/// Generates a CA and a server certificate for `127.0.0.1` and `localhost` signed by it.
///
/// A separate CA (rather than one self-signed leaf) is what certificate verifiers expect to
/// find in a trust store, so clients can keep full verification on.
pub(super) fn generate_self_signed() -> Result<TlsSetup, TlsError> {
    let mut ca_params = CertificateParams::new(Vec::<String>::new())?;
    ca_params.distinguished_name = distinguished_name("bigip-operator simulator CA");
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params.key_usages =
        vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign, KeyUsagePurpose::DigitalSignature];
    let ca = CertifiedIssuer::self_signed(ca_params, KeyPair::generate()?)?;

    let mut server_params = CertificateParams::new(SERVER_NAMES.map(str::to_owned).to_vec())?;
    server_params.distinguished_name = distinguished_name("bigip-operator simulator");
    server_params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    server_params.key_usages = vec![KeyUsagePurpose::DigitalSignature, KeyUsagePurpose::KeyEncipherment];
    let server_key = KeyPair::generate()?;
    let server_cert = server_params.signed_by(&server_key, &ca)?;

    let chain = vec![server_cert.der().clone(), ca.der().clone()];
    let key = PrivateKeyDer::Pkcs8(server_key.serialize_der().into());
    Ok(TlsSetup { server_config: server_config(chain, key)?, ca_certificate_pem: Some(ca.pem()) })
}

/// Loads a PEM certificate chain and private key.
pub(super) async fn from_files(cert: &Path, key: &Path) -> Result<TlsSetup, TlsError> {
    let cert_pem = read(cert).await?;
    let key_pem = read(key).await?;
    let chain: Vec<CertificateDer<'static>> =
        CertificateDer::pem_slice_iter(&cert_pem).filter_map(Result::ok).collect();
    if chain.is_empty() {
        return Err(TlsError::NoCertificate { path: cert.to_owned() });
    }
    let key_der =
        PrivateKeyDer::from_pem_slice(&key_pem).map_err(|_| TlsError::NoPrivateKey { path: key.to_owned() })?;
    Ok(TlsSetup { server_config: server_config(chain, key_der)?, ca_certificate_pem: None })
}

async fn read(path: &Path) -> Result<Vec<u8>, TlsError> {
    tokio::fs::read(path).await.map_err(|source| TlsError::Read { path: path.to_owned(), source })
}

fn distinguished_name(common_name: &str) -> DistinguishedName {
    let mut name = DistinguishedName::new();
    name.push(DnType::CommonName, common_name);
    name.push(DnType::OrganizationName, "bigip-operator");
    name
}

/// The crypto provider is named explicitly: the dependency tree enables more than one rustls
/// provider, and a process-wide default may not be installed.
fn server_config(
    chain: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
) -> Result<Arc<ServerConfig>, TlsError> {
    let mut config = ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_single_cert(chain, key)?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_setup_has_a_ca_pem() {
        let setup = generate_self_signed().expect("certificate generation works");
        let pem = setup.ca_certificate_pem.expect("self-signed mode exposes its CA");
        assert!(pem.starts_with("-----BEGIN CERTIFICATE-----"));
        assert_eq!(setup.server_config.alpn_protocols.len(), 2);
    }
}
