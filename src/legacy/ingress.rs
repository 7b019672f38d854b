//! Ingresses of class `f5` with `virtual-server.f5.com/*` annotations → VirtualServer.
//!
//! What k8s-bigip-ctlr 1.x did with such an Ingress, expressed with the operator's CRD:
//!
//! | Ingress | VirtualServer |
//! |---|---|
//! | `virtual-server.f5.com/ip` | `virtualAddress` (required; `controller-default` and IPAM are unsupported) |
//! | `virtual-server.f5.com/http-port` (80) | `port` of the HTTP virtual server |
//! | `virtual-server.f5.com/https-port` (443) | `port` when the Ingress has `tls` |
//! | `virtual-server.f5.com/partition` | `partition` (default: the operator's) |
//! | `virtual-server.f5.com/balance` | every pool's `loadBalancingMode` (default round-robin) |
//! | `virtual-server.f5.com/health` | an `http` monitor on the pool of the rule whose `host/path` it names |
//! | `spec.rules[].host` + `paths[].path` | `rules[]` (host, path, `Prefix` unless `pathType: Exact`) |
//! | `spec.defaultBackend` (`spec.backend`) | `defaultPool` |
//! | `spec.tls[0].secretName` | `tls.secretName`, or `tls.clientSslProfile` when it is a BIG-IP path (`/Common/clientssl`) |
//! | `virtual-server.f5.com/clientssl` | `tls.clientSslProfile` |
//! | `virtual-server.f5.com/serverssl` | `tls.mode: reencrypt` + `tls.serverSslProfile` |
//! | `ssl-redirect` (true), `allow-http` (false) | `tls.httpRedirect`; allow-http adds a plain HTTP VirtualServer |
//! | `virtual-server.f5.com/whitelist-source-range` (comma-separated CIDRs) | `allowSourceRanges` |
//!
//! extensions/v1beta1 and networking.k8s.io/v1beta1 manifests (`serviceName`/`servicePort`,
//! `spec.backend`) are read as networking.k8s.io/v1.

use std::collections::BTreeMap;

use k8s_openapi::api::networking::v1::{Ingress, IngressBackend, IngressServiceBackend};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use serde_json::{json, Value};

use super::GENERATED_FROM_LABEL;
use crate::crd::{
    HealthMonitor, LoadBalancingMode, MonitorType, PathType, Pool, RoutingRule, Tls, TlsMode, VirtualServer,
    VirtualServerSpec,
};

/// The annotation prefix of k8s-bigip-ctlr's Ingress settings.
pub const ANNOTATION_PREFIX: &str = "virtual-server.f5.com/";
/// The Ingress class k8s-bigip-ctlr handled.
pub const INGRESS_CLASS: &str = "f5";

/// Why an Ingress cannot be translated.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IngressError {
    #[error("not an Ingress manifest: {0}")]
    Manifest(String),
    #[error("annotation {ANNOTATION_PREFIX}ip is missing: the operator needs the virtual address")]
    NoAddress,
    #[error("annotation {annotation} {value:?} is invalid: {reason}")]
    Annotation { annotation: String, value: String, reason: String },
    #[error("{field} is not supported: {reason}")]
    Unsupported { field: String, reason: String },
    #[error("spec: {0}")]
    Spec(String),
}

/// The VirtualServers an Ingress becomes, and what was translated approximately.
#[derive(Debug, Clone)]
pub struct IngressTranslation {
    /// The HTTP or HTTPS VirtualServer, then (with `allow-http` on a TLS Ingress) the plain
    /// HTTP one.
    pub virtual_servers: Vec<VirtualServer>,
    pub warnings: Vec<String>,
}

/// Whether k8s-bigip-ctlr would have handled this Ingress: class `f5` by annotation or
/// `spec.ingressClassName`, or (as 1.x did) no class at all but `virtual-server.f5.com/ip`.
pub fn is_f5_ingress(ingress: &Ingress) -> bool {
    let annotations = ingress.metadata.annotations.as_ref();
    let by_annotation = annotations.and_then(|a| a.get("kubernetes.io/ingress.class")).map(String::as_str);
    let by_spec = ingress.spec.as_ref().and_then(|s| s.ingress_class_name.as_deref());
    match by_annotation.or(by_spec) {
        Some(class) => class == INGRESS_CLASS,
        None => annotations.is_some_and(|a| a.contains_key(&format!("{ANNOTATION_PREFIX}ip"))),
    }
}

/// Reads an Ingress manifest of any served version (`extensions/v1beta1`,
/// `networking.k8s.io/v1beta1` or `v1`) as networking.k8s.io/v1.
pub fn ingress_from_manifest(manifest: &Value) -> Result<Ingress, IngressError> {
    let mut value = manifest.clone();
    let legacy = value.get("apiVersion").and_then(Value::as_str).is_some_and(|v| v.ends_with("v1beta1"));
    if legacy {
        if let Some(spec) = value.get_mut("spec").and_then(Value::as_object_mut) {
            if let Some(backend) = spec.remove("backend") {
                spec.insert("defaultBackend".into(), v1_backend(&backend));
            }
            for rule in spec.get_mut("rules").and_then(Value::as_array_mut).into_iter().flatten() {
                let paths = rule.pointer_mut("/http/paths").and_then(Value::as_array_mut);
                for path in paths.into_iter().flatten() {
                    if let Some(backend) = path.get("backend").cloned() {
                        path["backend"] = v1_backend(&backend);
                    }
                    if path.get("pathType").is_none() {
                        path["pathType"] = json!("ImplementationSpecific");
                    }
                }
            }
        }
        value["apiVersion"] = json!("networking.k8s.io/v1");
    }
    serde_path_to_error::deserialize(value).map_err(|e| IngressError::Manifest(format!("{}: {}", e.path(), e.inner())))
}

/// `{serviceName, servicePort}` → `{service: {name, port: {number | name}}}`.
fn v1_backend(backend: &Value) -> Value {
    let port = match backend.get("servicePort") {
        Some(Value::Number(n)) => json!({ "number": n }),
        Some(Value::String(s)) => match s.parse::<i64>() {
            Ok(n) => json!({ "number": n }),
            Err(_) => json!({ "name": s }),
        },
        _ => json!({}),
    };
    json!({ "service": { "name": backend.get("serviceName").cloned().unwrap_or(Value::Null), "port": port } })
}

/// One `virtual-server.f5.com/health` entry.
#[derive(Debug, serde::Deserialize)]
struct HealthEntry {
    path: String,
    #[serde(default)]
    send: Option<String>,
    #[serde(default)]
    recv: Option<String>,
    interval: i32,
    timeout: i32,
}

/// Translates an Ingress as k8s-bigip-ctlr 1.x programmed it.
pub fn translate_ingress(ingress: &Ingress) -> Result<IngressTranslation, IngressError> {
    let annotations = ingress.metadata.annotations.clone().unwrap_or_default();
    let annotation = |name: &str| annotations.get(&format!("{ANNOTATION_PREFIX}{name}")).map(String::as_str);
    let mut warnings = Vec::new();
    for key in annotations.keys().filter_map(|k| k.strip_prefix(ANNOTATION_PREFIX)) {
        if !KNOWN_ANNOTATIONS.contains(&key) {
            return Err(IngressError::Unsupported {
                field: format!("annotation {ANNOTATION_PREFIX}{key}"),
                reason: "it has no equivalent in the VirtualServer CRD; remove it or express it with iRules".into(),
            });
        }
    }

    let address = match annotation("ip") {
        None => return Err(IngressError::NoAddress),
        Some("controller-default") => {
            return Err(IngressError::Unsupported {
                field: format!("annotation {ANNOTATION_PREFIX}ip: controller-default"),
                reason: "the operator has no default Ingress address; put the address in the annotation".into(),
            })
        }
        Some(ip) => {
            ip.parse::<std::net::IpAddr>().map_err(|_| invalid("ip", ip, "not an IPv4 or IPv6 address"))?.to_string()
        }
    };
    let http_port = port_annotation(annotation("http-port"), "http-port", 80)?;
    let https_port = port_annotation(annotation("https-port"), "https-port", 443)?;
    let balance = match annotation("balance") {
        None => LoadBalancingMode::RoundRobin,
        Some(mode) => serde_json::from_value(json!(mode))
            .map_err(|_| invalid("balance", mode, "not a BIG-IP load-balancing mode"))?,
    };
    let spec = ingress.spec.clone().unwrap_or_default();

    // Pools: one per Service port, in order of appearance.
    let mut pools: Vec<Pool> = Vec::new();
    let mut pool_for = |backend: &IngressBackend| -> Result<String, IngressError> {
        let service = backend.service.as_ref().ok_or_else(|| IngressError::Unsupported {
            field: "a resource backend".into(),
            reason: "only Service backends are supported".into(),
        })?;
        let port = service_port(service)?;
        let name = pool_name(&service.name, &port);
        if !pools.iter().any(|p| p.name == name) {
            pools.push(Pool {
                name: name.clone(),
                service: service.name.clone(),
                service_port: port,
                load_balancing_mode: balance,
                ..Pool::default()
            });
        }
        Ok(name)
    };
    let default_pool = spec.default_backend.as_ref().map(&mut pool_for).transpose()?;
    let mut rules: Vec<RoutingRule> = Vec::new();
    for rule in spec.rules.iter().flatten() {
        for path in rule.http.iter().flat_map(|http| http.paths.iter()) {
            let pool = pool_for(&path.backend)?;
            let path_text = path.path.clone().filter(|p| p != "/" || rule.host.is_some());
            let (path_text, path_type) = match (path_text, path.path_type.as_str()) {
                (None, _) => (None, PathType::Prefix),
                (Some(p), "Exact") => (Some(p), PathType::Exact),
                (Some(p), _) => (Some(p.trim_end_matches('/').to_string()).filter(|p| !p.is_empty()), PathType::Prefix),
            };
            if rule.host.is_none() && path_text.is_none() {
                // A catch-all path: what the default pool is for.
                if default_pool.is_none() && !rules.is_empty() {
                    warnings.push(format!(
                        "path / of pool {pool} is a catch-all; it becomes the default pool only when it comes first"
                    ));
                }
                continue;
            }
            rules.push(RoutingRule { host: rule.host.clone(), path: path_text, path_type, pool, ..Default::default() });
        }
    }
    let Some(first) = pools.first().map(|p| p.name.clone()) else {
        return Err(IngressError::Spec("the Ingress names no Service backend".into()));
    };
    let default_pool = match default_pool {
        Some(pool) => pool,
        None => {
            if !rules.is_empty() {
                warnings.push(format!(
                    "the Ingress has no default backend: requests no rule matches go to pool {first} (k8s-bigip-ctlr rejected them)"
                ));
            }
            first
        }
    };

    if let Some(health) = annotation("health") {
        let entries: Vec<HealthEntry> = serde_json::from_str(health)
            .map_err(|e| invalid("health", health, &format!("not a JSON list of monitors: {e}")))?;
        for entry in entries {
            let (host, path) = match entry.path.split_once('/') {
                Some((host, path)) => (host, format!("/{path}")),
                None => (entry.path.as_str(), "/".to_string()),
            };
            let wanted_host = Some(host).filter(|h| !h.is_empty());
            let wanted_path = Some(path.trim_end_matches('/')).filter(|p| !p.is_empty());
            let matching = rules.iter().find(|r| r.host.as_deref() == wanted_host && r.path.as_deref() == wanted_path);
            let pool_name = match matching {
                Some(rule) => rule.pool.clone(),
                None if host.is_empty() || rules.is_empty() => default_pool.clone(),
                None => return Err(invalid("health", &entry.path, "names no host/path of the Ingress rules")),
            };
            // Range-checked before `interval + 1` below can overflow (i32::MAX came through
            // untouched before and panicked in debug builds).
            if !(1..=super::MONITOR_INTERVAL_MAX).contains(&i64::from(entry.interval)) {
                let reason =
                    format!("interval {} is outside AS3's 1-{} seconds", entry.interval, super::MONITOR_INTERVAL_MAX);
                return Err(invalid("health", &entry.path, &reason));
            }
            if !(2..=super::MONITOR_TIMEOUT_MAX).contains(&i64::from(entry.timeout)) {
                let reason =
                    format!("timeout {} is outside AS3's 2-{} seconds", entry.timeout, super::MONITOR_TIMEOUT_MAX);
                return Err(invalid("health", &entry.path, &reason));
            }
            let mut timeout = entry.timeout;
            if timeout <= entry.interval {
                warnings.push(format!(
                    "health monitor of {}: timeout {} is not above interval {}; using {} (the BIG-IP needs timeout > interval)",
                    entry.path,
                    entry.timeout,
                    entry.interval,
                    entry.interval + 1
                ));
                timeout = entry.interval + 1;
            }
            if let Some(pool) = pools.iter_mut().find(|p| p.name == pool_name) {
                pool.monitors.push(HealthMonitor {
                    monitor_type: MonitorType::Http,
                    send: entry.send.map(|s| legacy_send(&s)),
                    receive: entry.recv,
                    interval: entry.interval,
                    timeout,
                    target_port: None,
                    time_until_up: None,
                    ssl_profile: None,
                });
            }
        }
    }

    let tls_entries: Vec<String> = spec.tls.iter().flatten().filter_map(|t| t.secret_name.clone()).collect();
    if tls_entries.len() > 1 {
        return Err(IngressError::Unsupported {
            field: "spec.tls with more than one secretName".into(),
            reason: "a VirtualServer terminates TLS with one certificate; split the Ingress per certificate".into(),
        });
    }
    let client_profile = annotation("clientssl").map(bigip_profile);
    let server_profile = annotation("serverssl").map(bigip_profile);
    let ssl_redirect = bool_annotation(&annotations, "ssl-redirect", true)?;
    let allow_http = bool_annotation(&annotations, "allow-http", false)?;
    let tls = if tls_entries.is_empty() && client_profile.is_none() {
        if server_profile.is_some() {
            return Err(IngressError::Spec(format!(
                "{ANNOTATION_PREFIX}serverssl needs TLS on the Ingress (spec.tls or clientssl)"
            )));
        }
        None
    } else {
        let (secret_name, client_ssl_profile) = match (client_profile, tls_entries.first()) {
            (Some(profile), _) => (None, Some(profile)),
            (None, Some(name)) if name.starts_with('/') => (None, Some(name.clone())),
            (None, Some(name)) => (Some(name.clone()), None),
            (None, None) => (None, None),
        };
        Some(Tls {
            mode: if server_profile.is_some() { TlsMode::Reencrypt } else { TlsMode::Terminate },
            secret_name,
            client_ssl_profile,
            server_ssl_profile: server_profile,
            backend_ca_secret_name: None,
            http_redirect: ssl_redirect && !allow_http,
            allow_http: false,
            http_port: (ssl_redirect && !allow_http && http_port != 80).then_some(http_port),
            min_version: None,
            max_version: None,
            ciphers: None,
            cipher_group: None,
            client_certificates: None,
        })
    };

    let base = VirtualServerSpec {
        virtual_address: address,
        port: if tls.is_some() { https_port } else { http_port },
        partition: annotation("partition").map(str::to_string),
        pools,
        default_pool: Some(default_pool),
        bigip_default_pool: None,
        rules,
        tls,
        snat: Default::default(),
        snat_pool: None,
        persistence: None,
        i_rules: Vec::new(),
        allow_source_ranges: annotation("whitelist-source-range")
            .map(|ranges| ranges.split(',').map(|r| r.trim().to_string()).filter(|r| !r.is_empty()).collect())
            .unwrap_or_default(),
        waf_policy: None,
        x_forwarded_for: false,
        virtual_address_options: None,
        policy: None,
        profiles: None,
        allow_vlans: Vec::new(),
        connection_mirroring: false,
        address_pool: None,
        listener_group: None,
        app_root: None,
        redirects: Vec::new(),
        ltm_policies: Vec::new(),
        pool_member_type: None,
    };
    let mut virtual_servers = Vec::new();
    let plain_http = base.tls.is_some() && allow_http;
    if plain_http {
        let mut http = base.clone();
        http.tls = None;
        http.port = http_port;
        virtual_servers.push(generated(ingress, "http", http)?);
    }
    virtual_servers.insert(0, generated(ingress, "", base)?);
    Ok(IngressTranslation { virtual_servers, warnings })
}

/// Annotations k8s-bigip-ctlr 1.x read (after `virtual-server.f5.com/`) that are translated.
const KNOWN_ANNOTATIONS: &[&str] = &[
    "ip",
    "http-port",
    "https-port",
    "partition",
    "balance",
    "health",
    "clientssl",
    "serverssl",
    "ssl-redirect",
    "allow-http",
    "whitelist-source-range",
];

fn invalid(annotation: &str, value: &str, reason: &str) -> IngressError {
    IngressError::Annotation {
        annotation: format!("{ANNOTATION_PREFIX}{annotation}"),
        value: value.to_string(),
        reason: reason.to_string(),
    }
}

fn port_annotation(value: Option<&str>, name: &str, default: i32) -> Result<i32, IngressError> {
    match value {
        None => Ok(default),
        Some(text) => text
            .parse::<i32>()
            .ok()
            .filter(|p| (1..=65535).contains(p))
            .ok_or_else(|| invalid(name, text, "not a port 1-65535")),
    }
}

/// `ssl-redirect` / `allow-http`, under `virtual-server.f5.com/` or `ingress.kubernetes.io/`
/// (k8s-bigip-ctlr read the latter).
fn bool_annotation(annotations: &BTreeMap<String, String>, name: &str, default: bool) -> Result<bool, IngressError> {
    let value = annotations
        .get(&format!("{ANNOTATION_PREFIX}{name}"))
        .or_else(|| annotations.get(&format!("ingress.kubernetes.io/{name}")));
    match value.map(String::as_str) {
        None => Ok(default),
        Some("true") => Ok(true),
        Some("false") => Ok(false),
        Some(other) => Err(invalid(name, other, "must be \"true\" or \"false\"")),
    }
}

/// A BIG-IP profile name as k8s-bigip-ctlr took it: a full path, or a name in /Common.
fn bigip_profile(value: &str) -> String {
    if value.starts_with('/') {
        value.to_string()
    } else {
        format!("/Common/{value}")
    }
}

/// k8s-bigip-ctlr sent `send` as written plus the HTTP line end; a bare `HTTP GET /x` (its
/// documented form) becomes a request line.
fn legacy_send(send: &str) -> String {
    let request = send.strip_prefix("HTTP ").unwrap_or(send);
    if request.ends_with("\r\n\r\n") {
        request.to_string()
    } else {
        format!("{request} HTTP/1.0\r\n\r\n")
    }
}

fn service_port(service: &IngressServiceBackend) -> Result<IntOrString, IngressError> {
    let port = service.port.as_ref();
    match (port.and_then(|p| p.number), port.and_then(|p| p.name.clone())) {
        (Some(n), _) => Ok(IntOrString::Int(n)),
        (None, Some(name)) => Ok(IntOrString::String(name)),
        (None, None) => Err(IngressError::Spec(format!("the backend of Service {:?} has no port", service.name))),
    }
}

/// A pool name (lower-case letter, then lower-case letters, digits, `-`) for a Service port.
fn pool_name(service: &str, port: &IntOrString) -> String {
    let port = match port {
        IntOrString::Int(n) => n.to_string(),
        IntOrString::String(s) => s.clone(),
    };
    kube_name(&format!("{service}-{port}"), 63)
}

fn kube_name(text: &str, max: usize) -> String {
    super::sanitized_name(text, "x-", max)
}

/// The VirtualServer generated from `ingress`, owned by it.
fn generated(ingress: &Ingress, suffix: &str, spec: VirtualServerSpec) -> Result<VirtualServer, IngressError> {
    let source = ingress.metadata.name.clone().unwrap_or_default();
    let base = if suffix.is_empty() { format!("ing-{source}") } else { format!("ing-{source}-{suffix}") };
    let owner = ingress.metadata.uid.clone().map(|uid| OwnerReference {
        api_version: "networking.k8s.io/v1".into(),
        kind: "Ingress".into(),
        name: source.clone(),
        uid,
        controller: Some(true),
        block_owner_deletion: Some(true),
    });
    let mut vs = VirtualServer::new(&kube_name(&base, 253), spec);
    vs.metadata = ObjectMeta {
        name: vs.metadata.name.take(),
        namespace: ingress.metadata.namespace.clone(),
        labels: Some(BTreeMap::from([(GENERATED_FROM_LABEL.to_string(), "Ingress".to_string())])),
        owner_references: owner.map(|o| vec![o]),
        ..ObjectMeta::default()
    };
    Ok(vs)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn from_yaml(text: &str) -> Ingress {
        let value: Value = serde_yaml::from_str(text).expect("yaml");
        ingress_from_manifest(&value).expect("ingress")
    }

    const FANOUT: &str = r#"
apiVersion: extensions/v1beta1
kind: Ingress
metadata:
  name: ing1
  namespace: default
  uid: 0b6c3b4e-1111-2222-3333-444455556666
  annotations:
    virtual-server.f5.com/ip: "1.2.3.4"
    virtual-server.f5.com/partition: "k8s"
    virtual-server.f5.com/balance: "least-connections-node"
    virtual-server.f5.com/whitelist-source-range: "10.0.0.0/8, 192.168.1.0/24"
    virtual-server.f5.com/health: |
      [{"path": "svc1.example.com/app1", "send": "HTTP GET /health/app1", "interval": 5, "timeout": 10},
       {"path": "svc2.example.com/app2", "send": "HTTP GET /health/app2", "interval": 5, "timeout": 5}]
spec:
  rules:
  - host: svc1.example.com
    http:
      paths:
      - {path: /app1, backend: {serviceName: svc1, servicePort: 8080}}
  - host: svc2.example.com
    http:
      paths:
      - {path: /app2/, backend: {serviceName: svc2, servicePort: http}}
"#;

    #[test]
    fn health_timings_out_of_range_are_refused_not_overflowed() {
        // i32::MAX as interval made `interval + 1` overflow: a panic in debug builds.
        for (interval, timeout, named) in [
            (2147483647, 5, "interval 2147483647"),
            (0, 5, "interval 0"),
            (5, 2147483647, "timeout 2147483647"),
            (5, -1, "timeout -1"),
        ] {
            let health =
                format!(r#"[{{"path": "svc1.example.com/app1", "interval": {interval}, "timeout": {timeout}}}]"#);
            let text = FANOUT.replacen(
                "virtual-server.f5.com/health: |",
                &format!("virtual-server.f5.com/health: '{health}'\n    x-old-health: |"),
                1,
            );
            let err = translate_ingress(&from_yaml(&text)).expect_err("refused").to_string();
            assert!(err.contains(named) && err.contains("virtual-server.f5.com/health"), "{err}");
        }
    }

    #[test]
    fn a_v1beta1_fanout_becomes_rules_pools_and_monitors() {
        let translation = translate_ingress(&from_yaml(FANOUT)).expect("translates");
        let [vs] = translation.virtual_servers.as_slice() else { panic!("one VirtualServer") };
        assert_eq!(vs.metadata.name.as_deref(), Some("ing-ing1"));
        assert_eq!(vs.metadata.namespace.as_deref(), Some("default"));
        assert_eq!(
            vs.metadata.labels.as_ref().and_then(|l| l.get(GENERATED_FROM_LABEL)).map(String::as_str),
            Some("Ingress")
        );
        let owner = &vs.metadata.owner_references.as_ref().expect("owned")[0];
        assert_eq!((owner.kind.as_str(), owner.name.as_str(), owner.controller), ("Ingress", "ing1", Some(true)));
        let spec = &vs.spec;
        assert_eq!((spec.virtual_address.as_str(), spec.port, spec.partition.as_deref()), ("1.2.3.4", 80, Some("k8s")));
        let pools: Vec<(&str, &str, IntOrString)> =
            spec.pools.iter().map(|p| (p.name.as_str(), p.service.as_str(), p.service_port.clone())).collect();
        assert_eq!(
            pools,
            [("svc1-8080", "svc1", IntOrString::Int(8080)), ("svc2-http", "svc2", IntOrString::String("http".into()))]
        );
        assert!(spec.pools.iter().all(|p| p.load_balancing_mode == LoadBalancingMode::LeastConnectionsNode));
        let rules: Vec<(Option<&str>, Option<&str>, &str)> =
            spec.rules.iter().map(|r| (r.host.as_deref(), r.path.as_deref(), r.pool.as_str())).collect();
        assert_eq!(
            rules,
            [
                (Some("svc1.example.com"), Some("/app1"), "svc1-8080"),
                (Some("svc2.example.com"), Some("/app2"), "svc2-http")
            ]
        );
        let monitor = &spec.pools[0].monitors[0];
        assert_eq!(monitor.send.as_deref(), Some("GET /health/app1 HTTP/1.0\r\n\r\n"));
        assert_eq!((monitor.interval, monitor.timeout), (5, 10));
        assert_eq!(spec.pools[1].monitors[0].timeout, 6, "raised above the interval");
        assert!(
            translation.warnings.iter().any(|w| w.contains("timeout 5 is not above interval 5")),
            "{:?}",
            translation.warnings
        );
        assert!(translation.warnings.iter().any(|w| w.contains("no default backend")), "{:?}", translation.warnings);
        assert_eq!(spec.default_pool.as_deref(), Some("svc1-8080"));
        assert_eq!(spec.allow_source_ranges, ["10.0.0.0/8", "192.168.1.0/24"]);
    }

    #[test]
    fn tls_maps_to_a_secret_or_a_profile_with_redirect_and_allow_http() {
        let tls = |secret: &str, extra: &str| {
            from_yaml(&format!(
                "apiVersion: networking.k8s.io/v1\nkind: Ingress\nmetadata:\n  name: web\n  annotations:\n    virtual-server.f5.com/ip: \"10.0.0.5\"\n{extra}spec:\n  tls: [{{secretName: {secret}}}]\n  defaultBackend: {{service: {{name: web, port: {{number: 80}}}}}}\n"
            ))
        };
        let secret = translate_ingress(&tls("web-tls", "")).expect("translates");
        let [vs] = secret.virtual_servers.as_slice() else { panic!("one") };
        let t = vs.spec.tls.as_ref().expect("tls");
        assert_eq!(
            (vs.spec.port, t.secret_name.as_deref(), t.client_ssl_profile.as_deref(), t.http_redirect),
            (443, Some("web-tls"), None, true)
        );

        let profile = translate_ingress(&tls("/Common/clientssl", "    virtual-server.f5.com/serverssl: serverssl\n"))
            .expect("translates");
        let t = profile.virtual_servers[0].spec.tls.as_ref().expect("tls");
        assert_eq!(t.client_ssl_profile.as_deref(), Some("/Common/clientssl"));
        assert_eq!((t.mode, t.server_ssl_profile.as_deref()), (TlsMode::Reencrypt, Some("/Common/serverssl")));

        let both =
            translate_ingress(&tls("web-tls", "    ingress.kubernetes.io/allow-http: \"true\"\n")).expect("translates");
        let ports: Vec<(i32, bool)> =
            both.virtual_servers.iter().map(|v| (v.spec.port, v.spec.tls.is_some())).collect();
        assert_eq!(ports, [(443, true), (80, false)]);
        assert!(
            !both.virtual_servers[0].spec.tls.as_ref().expect("tls").http_redirect,
            "port 80 serves plain HTTP instead"
        );
        assert_eq!(both.virtual_servers[1].metadata.name.as_deref(), Some("ing-web-http"));

        let moved =
            translate_ingress(&tls("web-tls", "    virtual-server.f5.com/http-port: \"8080\"\n")).expect("translates");
        let t = moved.virtual_servers[0].spec.tls.as_ref().expect("tls");
        assert_eq!((t.http_redirect, t.http_port), (true, Some(8080)), "the redirect listens on http-port");
        assert!(moved.warnings.is_empty(), "{:?}", moved.warnings);
    }

    #[test]
    fn what_cannot_be_expressed_is_refused_by_name() {
        let with = |annotations: &str| {
            from_yaml(&format!(
                "apiVersion: networking.k8s.io/v1\nkind: Ingress\nmetadata:\n  name: web\n  annotations:\n{annotations}spec:\n  defaultBackend: {{service: {{name: web, port: {{number: 80}}}}}}\n"
            ))
        };
        let cases = [
            ("    virtual-server.f5.com/partition: k8s\n", "annotation virtual-server.f5.com/ip is missing"),
            ("    virtual-server.f5.com/ip: controller-default\n", "controller-default is not supported"),
            ("    virtual-server.f5.com/ip: 1.2.3\n", "not an IPv4 or IPv6 address"),
            (
                "    virtual-server.f5.com/ip: 1.2.3.4\n    virtual-server.f5.com/balance: fastest\n",
                "not a BIG-IP load-balancing mode",
            ),
            ("    virtual-server.f5.com/ip: 1.2.3.4\n    virtual-server.f5.com/http-port: \"0\"\n", "not a port"),
            (
                "    virtual-server.f5.com/ip: 1.2.3.4\n    virtual-server.f5.com/rewrite-app-root: /app\n",
                "rewrite-app-root is not supported",
            ),
            ("    virtual-server.f5.com/ip: 1.2.3.4\n    virtual-server.f5.com/health: nope\n", "not a JSON list"),
            ("    virtual-server.f5.com/ip: 1.2.3.4\n    virtual-server.f5.com/serverssl: x\n", "needs TLS"),
        ];
        for (annotations, expected) in cases {
            let error = translate_ingress(&with(annotations)).expect_err(expected);
            assert!(error.to_string().contains(expected), "{error} lacks {expected:?}");
        }
    }

    #[test]
    fn the_f5_class_is_recognised_as_k8s_bigip_ctlr_did() {
        let class = |meta: &str, spec: &str| {
            from_yaml(&format!("apiVersion: networking.k8s.io/v1\nkind: Ingress\nmetadata:\n  name: a\n{meta}spec:\n{spec}  defaultBackend: {{service: {{name: web, port: {{number: 80}}}}}}\n"))
        };
        assert!(is_f5_ingress(&class("  annotations: {kubernetes.io/ingress.class: f5}\n", "")));
        assert!(is_f5_ingress(&class("", "  ingressClassName: f5\n")));
        assert!(is_f5_ingress(&class("  annotations: {virtual-server.f5.com/ip: 1.2.3.4}\n", "")));
        assert!(!is_f5_ingress(&class(
            "  annotations: {kubernetes.io/ingress.class: nginx, virtual-server.f5.com/ip: 1.2.3.4}\n",
            ""
        )));
        assert!(!is_f5_ingress(&class("", "")));
    }
}
