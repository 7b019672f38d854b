//! TLS material from Kubernetes Secrets, checked before it is sent to the BIG-IP.

use k8s_openapi::api::core::v1::Secret;

use super::{ServerTls, UnresolvedRef};

/// The Secret type whose certificates the operator reads (and the only type it watches).
pub const TLS_SECRET_TYPE: &str = "kubernetes.io/tls";

/// The certificate (leaf first, then its chain) and private key of a `kubernetes.io/tls`
/// Secret, as the BIG-IP certificate of a virtual server.
pub fn server_certificate(field: &'static str, secret: &Secret) -> Result<ServerTls, UnresolvedRef> {
    let invalid = |reason: String| UnresolvedRef::InvalidSecret { field, secret: secret_name(secret), reason };
    check_type(secret).map_err(invalid)?;
    let certificates = certificates(secret, "tls.crt").map_err(invalid)?;
    let key_text = data_text(secret, "tls.key").map_err(invalid)?;
    let keys = pem::parse_many(&key_text).map_err(|e| invalid(format!("tls.key is not PEM: {e}")))?;
    let key = match keys.as_slice() {
        [key] => key,
        [] => return Err(invalid("tls.key holds no PEM block".into())),
        _ => return Err(invalid("tls.key holds more than one PEM block".into())),
    };
    let key_der = match key.tag() {
        // OpenSSL's legacy encryption keeps the PKCS#1/SEC1 tag and adds headers.
        "RSA PRIVATE KEY" | "EC PRIVATE KEY"
            if key.headers().get("Proc-Type").is_some_and(|value| value.contains("ENCRYPTED")) =>
        {
            return Err(invalid(
                "tls.key is encrypted (Proc-Type: 4,ENCRYPTED); the key must be unencrypted PKCS#1, PKCS#8 or SEC1"
                    .into(),
            ))
        }
        "PRIVATE KEY" => rustls::pki_types::PrivateKeyDer::Pkcs8(key.contents().to_vec().into()),
        "RSA PRIVATE KEY" => rustls::pki_types::PrivateKeyDer::Pkcs1(key.contents().to_vec().into()),
        "EC PRIVATE KEY" => rustls::pki_types::PrivateKeyDer::Sec1(key.contents().to_vec().into()),
        "ENCRYPTED PRIVATE KEY" => {
            return Err(invalid("tls.key is encrypted; the key must be unencrypted PKCS#1, PKCS#8 or SEC1".into()))
        }
        other => return Err(invalid(format!("tls.key holds a {other:?} block, not a private key"))),
    };
    let leaf = certificates.first().ok_or_else(|| invalid("tls.crt holds no certificate".into()))?;
    key_matches_certificate(&key_der, leaf.contents()).map_err(invalid)?;
    let mut blocks = certificates.iter().map(encode);
    let certificate = blocks.next().ok_or_else(|| invalid("tls.crt holds no certificate".into()))?;
    let chain: String = blocks.collect();
    Ok(ServerTls::Certificate {
        certificate: certificate.trim_end().to_string(),
        chain: chain.trim_end().to_string(),
        private_key: encode(key).trim_end().to_string(),
    })
}

/// The CA certificates in `ca.crt` of a `kubernetes.io/tls` Secret, as one PEM bundle.
pub fn ca_bundle(field: &'static str, secret: &Secret) -> Result<String, UnresolvedRef> {
    let invalid = |reason: String| UnresolvedRef::InvalidSecret { field, secret: secret_name(secret), reason };
    check_type(secret).map_err(invalid)?;
    let certificates = certificates(secret, "ca.crt").map_err(invalid)?;
    Ok(certificates.iter().map(encode).collect::<String>().trim_end().to_string())
}

/// Whether `key` is the private key of the certificate `leaf_der` (as BIG-IP requires of a
/// certificate and key pair): the key is read and its public key compared with the
/// certificate's.
fn key_matches_certificate(key: &rustls::pki_types::PrivateKeyDer<'_>, leaf_der: &[u8]) -> Result<(), String> {
    let signing_key = rustls::crypto::ring::sign::any_supported_type(key)
        .map_err(|e| format!("tls.key is not a usable RSA, ECDSA or Ed25519 private key: {e}"))?;
    let public_key = signing_key.public_key().ok_or_else(|| "tls.key has no public key to compare".to_string())?;
    let (_, certificate) = x509_parser::parse_x509_certificate(leaf_der)
        .map_err(|e| format!("the first certificate of tls.crt cannot be read: {e}"))?;
    if certificate.tbs_certificate.subject_pki.raw != public_key.as_ref() {
        return Err("tls.key is not the private key of the first certificate in tls.crt".to_string());
    }
    Ok(())
}

/// Every certificate block must be a readable X.509 certificate.
fn check_certificates_parse(key: &str, blocks: &[pem::Pem]) -> Result<(), String> {
    for (index, block) in blocks.iter().enumerate() {
        x509_parser::parse_x509_certificate(block.contents())
            .map_err(|e| format!("certificate {} of {key} cannot be read: {e}", index + 1))?;
    }
    Ok(())
}

/// PEM with `\n` line endings (the `pem` crate writes `\r\n` by default).
fn encode(block: &pem::Pem) -> String {
    pem::encode_config(block, pem::EncodeConfig::new().set_line_ending(pem::LineEnding::LF))
}

fn secret_name(secret: &Secret) -> String {
    secret.metadata.name.clone().unwrap_or_default()
}

fn check_type(secret: &Secret) -> Result<(), String> {
    match secret.type_.as_deref() {
        Some(TLS_SECRET_TYPE) => Ok(()),
        other => Err(format!("its type is {:?}, not {TLS_SECRET_TYPE}", other.unwrap_or("Opaque"))),
    }
}

fn data_text(secret: &Secret, key: &str) -> Result<String, String> {
    let bytes = secret.data.as_ref().and_then(|data| data.get(key)).ok_or_else(|| format!("it has no {key}"))?;
    String::from_utf8(bytes.0.clone()).map_err(|_| format!("{key} is not text (PEM)"))
}

/// Every block of `key`, which must all be certificates.
fn certificates(secret: &Secret, key: &str) -> Result<Vec<pem::Pem>, String> {
    let text = data_text(secret, key)?;
    let blocks = pem::parse_many(&text).map_err(|e| format!("{key} is not PEM: {e}"))?;
    if blocks.is_empty() {
        return Err(format!("{key} holds no PEM certificate"));
    }
    if let Some(other) = blocks.iter().find(|b| b.tag() != "CERTIFICATE") {
        return Err(format!("{key} holds a {:?} block; only CERTIFICATE blocks are allowed", other.tag()));
    }
    check_certificates_parse(key, &blocks)?;
    Ok(blocks)
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use k8s_openapi::ByteString;

    use super::*;

    fn secret(type_: &str, data: &[(&str, String)]) -> Secret {
        Secret {
            metadata: k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta {
                name: Some("web-tls".into()),
                ..Default::default()
            },
            type_: Some(type_.into()),
            data: Some(
                data.iter()
                    .map(|(k, v)| ((*k).to_string(), ByteString(v.clone().into_bytes())))
                    .collect::<BTreeMap<_, _>>(),
            ),
            ..Default::default()
        }
    }

    fn pair() -> (String, String) {
        let cert = rcgen::generate_simple_self_signed(vec!["web.example.com".into()]).expect("generate");
        (cert.cert.pem(), cert.signing_key.serialize_pem())
    }

    #[test]
    fn reads_leaf_chain_and_key() {
        let (leaf, key) = pair();
        let (ca, _) = pair();
        let s = secret(TLS_SECRET_TYPE, &[("tls.crt", format!("{leaf}{ca}")), ("tls.key", key)]);
        let ServerTls::Certificate { certificate, chain, private_key } =
            server_certificate("spec.tls.secretName", &s).expect("valid")
        else {
            panic!("not a certificate");
        };
        assert_eq!(certificate, leaf.trim_end().replace("\r\n", "\n"));
        assert_eq!(chain, ca.trim_end().replace("\r\n", "\n"));
        assert!(private_key.starts_with("-----BEGIN PRIVATE KEY-----"), "{private_key}");
    }

    /// An RSA key as `openssl rsa -aes128` writes it (content irrelevant: refused on its headers).
    fn legacy_encrypted_key() -> String {
        "-----BEGIN RSA PRIVATE KEY-----\nProc-Type: 4,ENCRYPTED\nDEK-Info: AES-128-CBC,0123456789ABCDEF0123456789ABCDEF\n\nc2VjcmV0IHNlY3JldCBzZWNyZXQgc2VjcmV0\n-----END RSA PRIVATE KEY-----\n".to_owned()
    }

    /// A CERTIFICATE block that is not a certificate.
    fn garbage_certificate() -> String {
        "-----BEGIN CERTIFICATE-----\nbm90IGEgY2VydGlmaWNhdGU=\n-----END CERTIFICATE-----\n".to_owned()
    }

    fn garbage_key() -> String {
        "-----BEGIN PRIVATE KEY-----\nbm90IGEga2V5IGF0IGFsbA==\n-----END PRIVATE KEY-----\n".to_owned()
    }

    #[test]
    fn refuses_wrong_type_missing_keys_and_bad_pem() {
        let (leaf, key) = pair();
        let cases = [
            (secret("Opaque", &[("tls.crt", leaf.clone()), ("tls.key", key.clone())]), "not kubernetes.io/tls"),
            (secret(TLS_SECRET_TYPE, &[("tls.crt", leaf.clone())]), "no tls.key"),
            (
                secret(TLS_SECRET_TYPE, &[("tls.crt", "garbage".into()), ("tls.key", key.clone())]),
                "holds no PEM certificate",
            ),
            (secret(TLS_SECRET_TYPE, &[("tls.crt", key.clone()), ("tls.key", key.clone())]), "only CERTIFICATE blocks"),
            (
                secret(
                    TLS_SECRET_TYPE,
                    &[("tls.crt", leaf.clone()), ("tls.key", key.replace("PRIVATE KEY", "ENCRYPTED PRIVATE KEY"))],
                ),
                "encrypted",
            ),
            (secret(TLS_SECRET_TYPE, &[("tls.crt", leaf.clone()), ("tls.key", leaf.clone())]), "not a private key"),
            (
                secret(TLS_SECRET_TYPE, &[("tls.crt", leaf.clone()), ("tls.key", pair().1)]),
                "not the private key of the first certificate",
            ),
            (
                secret(TLS_SECRET_TYPE, &[("tls.crt", leaf.clone()), ("tls.key", legacy_encrypted_key())]),
                "encrypted (Proc-Type: 4,ENCRYPTED)",
            ),
            (
                secret(TLS_SECRET_TYPE, &[("tls.crt", garbage_certificate()), ("tls.key", key.clone())]),
                "certificate 1 of tls.crt cannot be read",
            ),
            (
                secret(TLS_SECRET_TYPE, &[("tls.crt", leaf.clone()), ("tls.key", garbage_key())]),
                "not a usable RSA, ECDSA or Ed25519 private key",
            ),
        ];
        for (s, expected) in cases {
            let error = server_certificate("spec.tls.secretName", &s).expect_err(expected);
            assert_eq!(error.reason(), "InvalidSecret");
            assert!(error.to_string().contains(expected), "{error} lacks {expected:?}");
        }
    }

    #[test]
    fn ca_bundle_needs_ca_crt() {
        let (ca, key) = pair();
        let with = secret(TLS_SECRET_TYPE, &[("ca.crt", ca.clone()), ("tls.key", key.clone())]);
        assert_eq!(ca_bundle("f", &with).expect("valid"), ca.trim_end().replace("\r\n", "\n"));
        let without = secret(TLS_SECRET_TYPE, &[("tls.key", key)]);
        assert!(ca_bundle("f", &without).expect_err("no ca.crt").to_string().contains("no ca.crt"));
    }
}
