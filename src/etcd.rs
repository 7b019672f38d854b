//! A small etcd v3 client over etcd's JSON gateway (`POST /v3/kv/range|put|deleterange`, keys
//! and values base64), for flannel's etcd mode: read the subnet leases, write and remove the
//! BIG-IP's own. Endpoints are tried in order; TLS with a CA and a client certificate.

use std::time::Duration;

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use serde_json::{json, Value};

/// Failures talking to etcd.
#[derive(Debug, thiserror::Error)]
pub enum EtcdError {
    #[error("etcd TLS setup failed: {0}")]
    Tls(String),
    #[error("etcd unreachable at {endpoints}: {detail}")]
    Unreachable { endpoints: String, detail: String },
    #[error("etcd {endpoint} answered {path} with HTTP {status}: {body}")]
    Http { endpoint: String, path: &'static str, status: u16, body: String },
    #[error("unexpected answer from etcd to {path}: {detail}")]
    InvalidResponse { path: &'static str, detail: String },
}

/// PEM material for a TLS connection to etcd.
#[derive(Debug, Clone, Default)]
pub struct EtcdTls {
    /// The CA that signed etcd's serving certificate.
    pub ca_pem: Option<Vec<u8>>,
    /// Client certificate and key, concatenated (PEM).
    pub identity_pem: Option<Vec<u8>>,
}

pub struct EtcdClient {
    http: reqwest::Client,
    endpoints: Vec<String>,
}

impl EtcdClient {
    pub fn new(endpoints: &[String], tls: &EtcdTls) -> Result<Self, EtcdError> {
        let mut builder =
            reqwest::Client::builder().timeout(Duration::from_secs(5)).connect_timeout(Duration::from_secs(3));
        if let Some(ca) = &tls.ca_pem {
            require_pem(ca, "ca.crt", &["CERTIFICATE"])?;
            let certificate = reqwest::Certificate::from_pem(ca).map_err(|e| EtcdError::Tls(format!("ca.crt: {e}")))?;
            builder = builder.add_root_certificate(certificate);
        }
        if let Some(identity) = &tls.identity_pem {
            require_pem(identity, "tls.crt/tls.key", &["CERTIFICATE", "PRIVATE KEY"])?;
            let identity =
                reqwest::Identity::from_pem(identity).map_err(|e| EtcdError::Tls(format!("tls.crt/tls.key: {e}")))?;
            builder = builder.identity(identity);
        }
        let http = builder.build().map_err(|e| EtcdError::Tls(e.to_string()))?;
        let endpoints = endpoints.iter().map(|e| e.trim_end_matches('/').to_string()).collect();
        Ok(Self { http, endpoints })
    }

    /// POSTs `body` to `path` on the first endpoint that answers.
    async fn call(&self, path: &'static str, body: &Value) -> Result<Value, EtcdError> {
        let mut failures = Vec::new();
        for endpoint in &self.endpoints {
            let response = match self.http.post(format!("{endpoint}{path}")).json(body).send().await {
                Ok(response) => response,
                Err(error) => {
                    failures.push(format!("{endpoint}: {error}"));
                    continue;
                }
            };
            let status = response.status();
            let text = response.text().await.unwrap_or_default();
            if !status.is_success() {
                return Err(EtcdError::Http { endpoint: endpoint.clone(), path, status: status.as_u16(), body: text });
            }
            return serde_json::from_str(&text).map_err(|e| EtcdError::InvalidResponse { path, detail: e.to_string() });
        }
        Err(EtcdError::Unreachable { endpoints: self.endpoints.join(", "), detail: failures.join("; ") })
    }

    /// Every key below `prefix` with its value (as text).
    pub async fn range_prefix(&self, prefix: &str) -> Result<Vec<(String, String)>, EtcdError> {
        self.range(
            &json!({ "key": STANDARD.encode(prefix), "range_end": STANDARD.encode(prefix_end(prefix.as_bytes())) }),
        )
        .await
    }

    /// The value of `key`, if it exists.
    pub async fn get(&self, key: &str) -> Result<Option<String>, EtcdError> {
        Ok(self.range(&json!({ "key": STANDARD.encode(key) })).await?.into_iter().next().map(|(_, value)| value))
    }

    async fn range(&self, body: &Value) -> Result<Vec<(String, String)>, EtcdError> {
        let answer = self.call("/v3/kv/range", body).await?;
        let decode =
            |field: &Value| -> Option<String> { String::from_utf8(STANDARD.decode(field.as_str()?).ok()?).ok() };
        let kvs = answer.get("kvs").and_then(Value::as_array).cloned().unwrap_or_default();
        kvs.iter()
            .map(|kv| {
                let key = kv.get("key").and_then(decode);
                // etcd leaves `value` out when it is empty.
                let value = kv.get("value").map_or(Some(String::new()), decode);
                key.zip(value).ok_or(EtcdError::InvalidResponse {
                    path: "/v3/kv/range",
                    detail: "a key or value is not base64 UTF-8".into(),
                })
            })
            .collect()
    }

    /// Writes `value` under `key`, with no lease (it does not expire).
    pub async fn put(&self, key: &str, value: &str) -> Result<(), EtcdError> {
        self.call("/v3/kv/put", &json!({ "key": STANDARD.encode(key), "value": STANDARD.encode(value) })).await?;
        Ok(())
    }

    /// Deletes `key`; a missing key is fine.
    pub async fn delete(&self, key: &str) -> Result<(), EtcdError> {
        self.call("/v3/kv/deleterange", &json!({ "key": STANDARD.encode(key) })).await?;
        Ok(())
    }
}

/// Checks that `pem` holds a block of each kind in `kinds` (a kind matches a tag ending in it,
/// so `PRIVATE KEY` matches `RSA PRIVATE KEY` and `EC PRIVATE KEY`): reqwest accepts text
/// without any block, which would silently mean no CA or no client certificate.
fn require_pem(pem: &[u8], what: &str, kinds: &[&str]) -> Result<(), EtcdError> {
    let blocks = pem::parse_many(pem).map_err(|e| EtcdError::Tls(format!("{what}: {e}")))?;
    for kind in kinds {
        if !blocks.iter().any(|block| block.tag().ends_with(kind)) {
            return Err(EtcdError::Tls(format!("{what}: no PEM {kind} block")));
        }
    }
    Ok(())
}

/// The end of the range of keys starting with `prefix`: the prefix with its last byte below
/// 0xff incremented (etcd's `clientv3.GetPrefixRangeEnd`).
fn prefix_end(prefix: &[u8]) -> Vec<u8> {
    let mut end = prefix.to_vec();
    while let Some(last) = end.pop() {
        if last < 0xff {
            end.push(last + 1);
            return end;
        }
    }
    // Every byte was 0xff: the range is every key from `prefix` on ("\0").
    vec![0]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_prefix_range_ends_after_the_last_key_with_the_prefix() {
        assert_eq!(prefix_end(b"/coreos.com/network/subnets/"), b"/coreos.com/network/subnets0".to_vec());
        assert_eq!(prefix_end(b"a\xff"), b"b".to_vec());
        assert_eq!(prefix_end(b"\xff\xff"), vec![0]);
    }

    #[tokio::test]
    async fn every_endpoint_is_tried_and_named_when_none_answers() {
        // Ports nothing listens on (bound then released).
        let free = || std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).expect("port");
        let endpoints = vec![format!("http://{}", free()), format!("http://{}/", free())];
        let client = EtcdClient::new(&endpoints, &EtcdTls::default()).expect("client");
        let error = client.get("/coreos.com/network/config").await.expect_err("nothing listens");
        let text = error.to_string();
        assert!(matches!(error, EtcdError::Unreachable { .. }), "{text}");
        assert!(text.contains(endpoints[0].as_str()) && text.contains(endpoints[1].trim_end_matches('/')), "{text}");
    }

    #[test]
    fn unusable_tls_material_is_a_tls_error() {
        let tls = EtcdTls { ca_pem: Some(b"not a certificate".to_vec()), identity_pem: None };
        let error = EtcdClient::new(&["https://127.0.0.1:2379".to_string()], &tls).err().expect("bad CA");
        assert!(matches!(error, EtcdError::Tls(_)) && error.to_string().contains("ca.crt"), "{error}");
        let tls = EtcdTls {
            ca_pem: None,
            identity_pem: Some(b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n".to_vec()),
        };
        let error = EtcdClient::new(&["https://127.0.0.1:2379".to_string()], &tls).err().expect("bad identity");
        assert!(error.to_string().contains("tls.crt/tls.key"), "{error}");
    }
}
