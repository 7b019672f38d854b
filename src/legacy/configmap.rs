//! `f5type: virtual-server` ConfigMaps (schemas v0.1.0–v0.1.7) → VirtualServer/TransportServer.
//!
//! A ConfigMap is read the way k8s-bigip-ctlr 1.x read it: `data.schema` names the exact
//! schema version, `data.data` is validated against that version, and the defaults are the
//! 1.x controller's (`mode` tcp, `balance` round-robin). What the operator's resources cannot
//! express is refused with [`LegacyError::Unsupported`], naming the field; what is expressed
//! differently is reported in [`Translation::warnings`]. docs/legacy-migration.md has the
//! field-by-field table.

use std::collections::BTreeMap;
use std::net::{Ipv4Addr, Ipv6Addr};
use std::sync::OnceLock;

use k8s_openapi::api::core::v1::ConfigMap;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use serde::Deserialize;
use serde_json::Value;
use sha2::{Digest, Sha256};

use super::{Translated, GENERATED_FROM_LABEL};
use crate::crd::{
    HealthMonitor, LoadBalancingMode, MonitorMatch, MonitorType, Pool, SnatMode, Tls, TlsMode, TransportProtocol,
    TransportServer, TransportServerSpec, TransportTls, VirtualServer, VirtualServerSpec,
};

/// The label that marks a legacy ConfigMap, and the value this module translates.
pub const F5TYPE_LABEL: &str = "f5type";
pub const F5TYPE_VIRTUAL_SERVER: &str = "virtual-server";

/// The ConfigMap annotation k8s-bigip-ctlr read the virtual address from when `bindAddr` is
/// absent (set by hand or by an IPAM controller).
pub const BIND_ADDR_ANNOTATION: &str = "virtual-server.f5.com/ip";

/// Prefix of the names of generated objects: `cm-<ConfigMap name>`.
pub const GENERATED_NAME_PREFIX: &str = "cm-";

/// k8s-bigip-ctlr 1.x defaults (`DEFAULT_MODE`, `DEFAULT_BALANCE`); the schemas declare none.
const DEFAULT_MODE: &str = "tcp";
const DEFAULT_BALANCE: &str = "round-robin";

use super::{MONITOR_INTERVAL_MAX, MONITOR_TIMEOUT_MAX};
const MONITORS_MAX: usize = 8;

/// What one ConfigMap becomes, and what the user should know about the translation.
#[derive(Debug, Clone)]
pub struct Translation {
    pub object: Translated,
    pub warnings: Vec<String>,
}

/// A schema violation in `data.data`: JSON pointer into the document and the message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LegacySchemaViolation {
    pub path: String,
    pub message: String,
}

impl std::fmt::Display for LegacySchemaViolation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let path = if self.path.is_empty() { "/" } else { &self.path };
        write!(f, "{path}: {}", self.message)
    }
}

/// Why a ConfigMap was not translated. Every variant names the ConfigMap (`namespace/name`).
#[derive(Debug, Clone, thiserror::Error)]
pub enum LegacyError {
    #[error("ConfigMap {config_map}: label {F5TYPE_LABEL} is {found:?}, not {F5TYPE_VIRTUAL_SERVER:?}")]
    NotVirtualServer { config_map: String, found: Option<String> },
    #[error("ConfigMap {config_map}: data.{key} is missing")]
    MissingKey { config_map: String, key: &'static str },
    #[error(
        "ConfigMap {config_map}: data.schema {value:?} is not a supported schema; expected \
         f5schemadb://bigip-virtual-server_v0.1.N.json with N from 0 to 7"
    )]
    UnknownSchema { config_map: String, value: String },
    #[error("ConfigMap {config_map}: data.data is not valid JSON: {message}")]
    InvalidJson { config_map: String, message: String },
    #[error("ConfigMap {config_map}: data.data does not validate against {schema}:\n  {}", violations.iter().map(ToString::to_string).collect::<Vec<_>>().join("\n  "))]
    Schema { config_map: String, schema: String, violations: Vec<LegacySchemaViolation> },
    #[error("ConfigMap {config_map}: {field}: not supported: {reason}")]
    Unsupported { config_map: String, field: String, reason: String },
    #[error("the embedded legacy schema {schema} does not compile: {message}")]
    SchemaCompile { schema: String, message: String },
}

/// A `bigip-virtual-server_v0.1.N.json` schema version.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SchemaVersion(u8);

/// The schemas as published by F5 (see schemas/legacy/README.md), indexed by N.
const SCHEMAS: [&str; 8] = [
    include_str!("../../schemas/legacy/bigip-virtual-server_v0.1.0.json"),
    include_str!("../../schemas/legacy/bigip-virtual-server_v0.1.1.json"),
    include_str!("../../schemas/legacy/bigip-virtual-server_v0.1.2.json"),
    include_str!("../../schemas/legacy/bigip-virtual-server_v0.1.3.json"),
    include_str!("../../schemas/legacy/bigip-virtual-server_v0.1.4.json"),
    include_str!("../../schemas/legacy/bigip-virtual-server_v0.1.5.json"),
    include_str!("../../schemas/legacy/bigip-virtual-server_v0.1.6.json"),
    include_str!("../../schemas/legacy/bigip-virtual-server_v0.1.7.json"),
];

impl SchemaVersion {
    /// The version a `data.schema` value names; only the exact URIs k8s-bigip-ctlr knew.
    pub fn from_uri(uri: &str) -> Option<Self> {
        let patch = uri.trim().strip_prefix("f5schemadb://bigip-virtual-server_v0.1.")?.strip_suffix(".json")?;
        // `parse` alone would accept "+7" and "07".
        if patch.len() != 1 {
            return None;
        }
        let patch: u8 = patch.parse().ok()?;
        (usize::from(patch) < SCHEMAS.len()).then_some(Self(patch))
    }

    /// The schema's file name, e.g. `bigip-virtual-server_v0.1.7.json`.
    pub fn file_name(self) -> String {
        format!("bigip-virtual-server_v0.1.{}.json", self.0)
    }

    fn index(self) -> usize {
        usize::from(self.0)
    }

    /// The schema text exactly as F5 published it.
    pub fn schema_text(self) -> &'static str {
        SCHEMAS[self.index()]
    }
}

/// The schema's `frontend` is a `oneOf` (virtual server or iApp). A failed `oneOf` reports
/// only "not valid under any of the schemas" at `/virtualServer/frontend`, so the document is
/// validated against the one branch it means (an `iapp` key selects the iApp branch, which
/// requires it; the virtual-server branch forbids it), whose errors name the offending field.
/// Both branches together accept exactly what the `oneOf` accepts.
#[derive(Clone, Copy)]
enum FrontendBranch {
    VirtualServer,
    IApp,
}

fn validator(version: SchemaVersion, branch: FrontendBranch) -> Result<&'static jsonschema::Validator, LegacyError> {
    static VS: [OnceLock<Result<jsonschema::Validator, String>>; 8] = [const { OnceLock::new() }; 8];
    static IAPP: [OnceLock<Result<jsonschema::Validator, String>>; 8] = [const { OnceLock::new() }; 8];
    let (cells, definition) = match branch {
        FrontendBranch::VirtualServer => (&VS, "frontendVSType"),
        FrontendBranch::IApp => (&IAPP, "frontendIAppType"),
    };
    cells[version.index()]
        .get_or_init(|| compile(version, definition))
        .as_ref()
        .map_err(|message| LegacyError::SchemaCompile { schema: version.file_name(), message: message.clone() })
}

fn compile(version: SchemaVersion, frontend_definition: &str) -> Result<jsonschema::Validator, String> {
    let mut schema: Value = serde_json::from_str(version.schema_text()).map_err(|e| e.to_string())?;
    let root = schema.as_object_mut().ok_or("the schema is not an object")?;
    // `$schema` is the malformed "http://json-schema/org/schema#" in every version and `id` is
    // an f5schemadb:// URI; the schemas mean draft-04, which is set explicitly instead.
    root.remove("$schema");
    root.remove("id");
    let frontend = schema
        .pointer_mut("/properties/virtualServer/properties/frontend")
        .ok_or("the schema has no /properties/virtualServer/properties/frontend")?;
    *frontend = serde_json::json!({ "$ref": format!("#/definitions/{frontend_definition}") });
    // v0.1.0 declares `"minLength": "1"` (a string), which draft-04 validators refuse; F5's
    // Go validator read it as 1.
    if let Some(min_length) = schema.pointer_mut("/definitions/sslProfileType/properties/f5ProfileName/minLength") {
        if min_length == "1" {
            *min_length = Value::from(1);
        }
    }
    jsonschema::options()
        .with_draft(jsonschema::Draft::Draft4)
        .should_validate_formats(true)
        .should_ignore_unknown_formats(false)
        // v0.1.0's draft-03 name for ipv4.
        .with_format("ip-address", |s: &str| s.parse::<Ipv4Addr>().is_ok())
        // v0.1.4+: F5's formats, an address with an optional `%<route domain>` suffix.
        .with_format("bigipv4", |s: &str| split_route_domain(s).is_some_and(|(a, _)| a.parse::<Ipv4Addr>().is_ok()))
        .with_format("bigipv6", |s: &str| split_route_domain(s).is_some_and(|(a, _)| a.parse::<Ipv6Addr>().is_ok()))
        .build(&schema)
        .map_err(|e| e.to_string())
}

/// `10.1.1.1%2` → (`10.1.1.1`, Some(`2`)); `None` when the suffix is not a number.
fn split_route_domain(address: &str) -> Option<(&str, Option<&str>)> {
    match address.split_once('%') {
        None => Some((address, None)),
        Some((address, rd)) if !rd.is_empty() && rd.chars().all(|c| c.is_ascii_digit()) => Some((address, Some(rd))),
        Some(_) => None,
    }
}

/// Validates `data` against the schema version, returning the violations (deepest first).
pub fn validate_data(version: SchemaVersion, data: &Value) -> Result<Vec<LegacySchemaViolation>, LegacyError> {
    let branch = if data.pointer("/virtualServer/frontend/iapp").is_some() {
        FrontendBranch::IApp
    } else {
        FrontendBranch::VirtualServer
    };
    let mut violations: Vec<LegacySchemaViolation> = validator(version, branch)?
        .iter_errors(data)
        .map(|e| LegacySchemaViolation { path: e.instance_path().to_string(), message: e.to_string() })
        .collect();
    violations.sort_by(|a, b| {
        let depth = |v: &LegacySchemaViolation| v.path.matches('/').count();
        depth(b).cmp(&depth(a)).then_with(|| a.path.cmp(&b.path))
    });
    violations.dedup();
    Ok(violations)
}

// The document after schema validation; field names as in the schemas.

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Document {
    virtual_server: LegacyVirtualServer,
}

#[derive(Deserialize)]
struct LegacyVirtualServer {
    backend: Backend,
    frontend: Value,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Backend {
    service_name: String,
    service_port: i32,
    #[serde(default)]
    health_monitors: Vec<LegacyMonitor>,
}

#[derive(Deserialize)]
struct LegacyMonitor {
    interval: Option<i64>,
    protocol: String,
    send: Option<String>,
    recv: Option<String>,
    timeout: Option<i64>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Frontend {
    partition: String,
    balance: Option<String>,
    mode: Option<String>,
    ssl_profile: Option<SslProfile>,
    virtual_address: Option<LegacyVirtualAddress>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct SslProfile {
    f5_profile_name: Option<String>,
    f5_profile_names: Option<Vec<String>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct LegacyVirtualAddress {
    bind_addr: Option<String>,
    port: i32,
}

/// Translates one `f5type: virtual-server` ConfigMap into the object the operator programs.
pub fn translate_config_map(cm: &ConfigMap) -> Result<Translation, LegacyError> {
    let config_map = config_map_key(&cm.metadata);
    let found = cm.metadata.labels.as_ref().and_then(|l| l.get(F5TYPE_LABEL));
    if found.map(String::as_str) != Some(F5TYPE_VIRTUAL_SERVER) {
        return Err(LegacyError::NotVirtualServer { config_map, found: found.cloned() });
    }
    let data_key = |key: &'static str| {
        cm.data
            .as_ref()
            .and_then(|d| d.get(key))
            .ok_or_else(|| LegacyError::MissingKey { config_map: config_map.clone(), key })
    };
    let schema = data_key("schema")?;
    let version = SchemaVersion::from_uri(schema)
        .ok_or_else(|| LegacyError::UnknownSchema { config_map: config_map.clone(), value: schema.clone() })?;
    let data: Value = serde_json::from_str(data_key("data")?)
        .map_err(|e| LegacyError::InvalidJson { config_map: config_map.clone(), message: e.to_string() })?;
    let violations = validate_data(version, &data)?;
    if !violations.is_empty() {
        return Err(LegacyError::Schema { config_map, schema: version.file_name(), violations });
    }
    let translator = Translator { config_map, cm, warnings: Vec::new() };
    translator.translate(data)
}

fn config_map_key(meta: &ObjectMeta) -> String {
    format!("{}/{}", meta.namespace.as_deref().unwrap_or("default"), meta.name.as_deref().unwrap_or(""))
}

struct Translator<'a> {
    config_map: String,
    cm: &'a ConfigMap,
    warnings: Vec<String>,
}

impl Translator<'_> {
    fn unsupported(&self, field: &str, reason: impl Into<String>) -> LegacyError {
        LegacyError::Unsupported {
            config_map: self.config_map.clone(),
            field: field.to_string(),
            reason: reason.into(),
        }
    }

    fn translate(mut self, data: Value) -> Result<Translation, LegacyError> {
        let document: Document = serde_json::from_value(data)
            .map_err(|e| LegacyError::InvalidJson { config_map: self.config_map.clone(), message: e.to_string() })?;
        let LegacyVirtualServer { backend, frontend } = document.virtual_server;
        if frontend.get("iapp").is_some() {
            return Err(self.unsupported(
                "/virtualServer/frontend/iapp",
                "iApp frontends deploy an F5 iApp template with its own variables and tables; the operator \
                 declares virtual servers through AS3 and has no iApp equivalent. Write a VirtualServer or \
                 TransportServer for the application instead",
            ));
        }
        let frontend: Frontend = serde_json::from_value(frontend)
            .map_err(|e| LegacyError::InvalidJson { config_map: self.config_map.clone(), message: e.to_string() })?;

        // Pool-only mode (no virtualAddress): only the pool, for a virtual server managed
        // outside Kubernetes, as k8s-bigip-ctlr did.
        let pool_only = frontend.virtual_address.is_none();
        let (virtual_address, port) =
            if pool_only { (String::new(), 0) } else { self.virtual_address(frontend.virtual_address.as_ref())? };
        let partition = self.partition(&frontend.partition)?;
        let pool = self.pool(&backend, frontend.balance.as_deref())?;
        let mode = frontend.mode.as_deref().unwrap_or(DEFAULT_MODE);
        let metadata = self.metadata();
        let object = match mode {
            "http" => {
                let tls = if pool_only {
                    if frontend.ssl_profile.is_some() {
                        self.warnings.push(format!(
                            "{}: sslProfile ignored: pool-only mode has no virtual server to terminate TLS on",
                            self.config_map
                        ));
                    }
                    None
                } else {
                    self.tls(frontend.ssl_profile.as_ref())?
                };
                Translated::VirtualServer(Box::new(VirtualServer {
                    metadata,
                    spec: VirtualServerSpec {
                        virtual_address,
                        port,
                        partition: Some(partition),
                        pools: vec![pool],
                        default_pool: None,
                        bigip_default_pool: None,
                        rules: Vec::new(),
                        tls,
                        snat: SnatMode::Automap,
                        snat_pool: None,
                        persistence: None,
                        i_rules: Vec::new(),
                        allow_source_ranges: Vec::new(),
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
                    },
                    status: None,
                }))
            }
            "tcp" | "udp" => {
                if mode == "udp" && frontend.ssl_profile.is_some() {
                    return Err(self.unsupported(
                        "/virtualServer/frontend/sslProfile",
                        "an SSL profile on a udp virtual server: TLS offload is for TCP; drop the profile".to_string(),
                    ));
                }
                // k8s-bigip-ctlr attached the client SSL profile to a tcp virtual server too:
                // TLS offload with that profile.
                let tls = self
                    .tls(frontend.ssl_profile.as_ref())?
                    .map(|tls| TransportTls { client_ssl_profile: tls.client_ssl_profile, ..TransportTls::default() });
                let protocol = if mode == "udp" { TransportProtocol::Udp } else { TransportProtocol::Tcp };
                Translated::TransportServer(Box::new(TransportServer {
                    metadata,
                    spec: TransportServerSpec {
                        virtual_address,
                        port,
                        protocol,
                        partition: Some(partition),
                        pool,
                        snat: SnatMode::Automap,
                        snat_pool: None,
                        persistence: None,
                        i_rules: Vec::new(),
                        allow_source_ranges: Vec::new(),
                        virtual_address_options: None,
                        policy: None,
                        profiles: None,
                        allow_vlans: Vec::new(),
                        connection_mirroring: false,
                        address_pool: None,
                        pool_member_type: None,
                        tls,
                    },
                    status: None,
                }))
            }
            other => return Err(self.unsupported("/virtualServer/frontend/mode", format!("unknown mode {other:?}"))),
        };
        Ok(Translation { object, warnings: self.warnings })
    }

    /// Same namespace, `cm-<name>`, the generated-from label, and the ConfigMap as controlling
    /// owner so that deleting the ConfigMap deletes the object.
    fn metadata(&mut self) -> ObjectMeta {
        let source = &self.cm.metadata;
        let source_name = source.name.clone().unwrap_or_default();
        let owner_references = match &source.uid {
            Some(uid) => Some(vec![OwnerReference {
                api_version: "v1".into(),
                kind: "ConfigMap".into(),
                name: source_name.clone(),
                uid: uid.clone(),
                controller: Some(true),
                block_owner_deletion: None,
            }]),
            None => {
                self.warnings.push(format!(
                    "ConfigMap {} has no metadata.uid (it was not read from a cluster): the generated object has no \
                     ownerReference and will not be deleted with the ConfigMap",
                    self.config_map
                ));
                None
            }
        };
        ObjectMeta {
            name: Some(generated_name(&source_name)),
            namespace: source.namespace.clone(),
            labels: Some(BTreeMap::from([(GENERATED_FROM_LABEL.to_string(), "ConfigMap".to_string())])),
            owner_references,
            ..ObjectMeta::default()
        }
    }

    fn virtual_address(&mut self, address: Option<&LegacyVirtualAddress>) -> Result<(String, i32), LegacyError> {
        let Some(address) = address else {
            return Ok((String::new(), 0));
        };
        let annotation = self.cm.metadata.annotations.as_ref().and_then(|a| a.get(BIND_ADDR_ANNOTATION));
        let (bind_addr, field) = match (&address.bind_addr, annotation) {
            (Some(bind_addr), _) => (bind_addr.clone(), "/virtualServer/frontend/virtualAddress/bindAddr".to_string()),
            (None, Some(annotation)) => (annotation.clone(), format!("metadata.annotations[{BIND_ADDR_ANNOTATION}]")),
            (None, None) => {
                return Err(self.unsupported(
                    "/virtualServer/frontend/virtualAddress/bindAddr",
                    format!(
                        "no bindAddr and no {BIND_ADDR_ANNOTATION} annotation: k8s-bigip-ctlr waited for an IPAM \
                         controller to set the annotation; the operator needs the address in the object"
                    ),
                ))
            }
        };
        match split_route_domain(&bind_addr) {
            Some((_, Some(rd))) => {
                return Err(self.unsupported(
                    &field,
                    format!(
                        "route domain %{rd} in {bind_addr:?}: virtual addresses with route domains are not supported"
                    ),
                ))
            }
            Some((plain, None)) if plain.parse::<std::net::IpAddr>().is_ok() => {}
            _ => return Err(self.unsupported(&field, format!("{bind_addr:?} is not an IPv4 or IPv6 address"))),
        }
        Ok((bind_addr, address.port))
    }

    fn partition(&self, partition: &str) -> Result<String, LegacyError> {
        if partition == "Common" {
            return Err(self.unsupported(
                "/virtualServer/frontend/partition",
                "the Common partition is reserved: the operator (like k8s-bigip-ctlr) only manages its own partitions",
            ));
        }
        Ok(partition.to_string())
    }

    fn pool(&mut self, backend: &Backend, balance: Option<&str>) -> Result<Pool, LegacyError> {
        let balance = balance.unwrap_or(DEFAULT_BALANCE);
        let load_balancing_mode: LoadBalancingMode =
            serde_json::from_value(Value::from(balance)).map_err(|_| {
                self.unsupported(
                    "/virtualServer/frontend/balance",
                    format!("{balance:?} is not a BIG-IP load-balancing mode the operator knows (e.g. round-robin, least-connections-member)"),
                )
            })?;
        if backend.health_monitors.len() > MONITORS_MAX {
            return Err(self.unsupported(
                "/virtualServer/backend/healthMonitors",
                format!("{} monitors; a pool takes at most {MONITORS_MAX}", backend.health_monitors.len()),
            ));
        }
        let monitors = backend
            .health_monitors
            .iter()
            .enumerate()
            .map(|(index, monitor)| self.monitor(index, monitor))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Pool {
            name: pool_name(&backend.service_name),
            service: backend.service_name.clone(),
            service_port: IntOrString::Int(backend.service_port),
            load_balancing_mode,
            monitors,
            // k8s-bigip-ctlr attached every monitor with BIG-IP's default rule: all must pass.
            monitor_match: MonitorMatch::All,
            ..Pool::default()
        })
    }

    fn monitor(&mut self, index: usize, monitor: &LegacyMonitor) -> Result<HealthMonitor, LegacyError> {
        let field = |name: &str| format!("/virtualServer/backend/healthMonitors/{index}/{name}");
        let monitor_type = match monitor.protocol.as_str() {
            "http" => MonitorType::Http,
            "tcp" => MonitorType::Tcp,
            "udp" => MonitorType::Udp,
            other => return Err(self.unsupported(&field("protocol"), format!("unknown monitor protocol {other:?}"))),
        };
        // Unset interval/timeout: BIG-IP's defaults (5 and 16), which are also the CRD's.
        let interval = monitor.interval.unwrap_or(5);
        if !(1..=MONITOR_INTERVAL_MAX).contains(&interval) {
            return Err(self.unsupported(
                &field("interval"),
                format!("interval {interval} is above AS3's limit of {MONITOR_INTERVAL_MAX} seconds"),
            ));
        }
        let timeout = monitor.timeout.unwrap_or(16);
        if !(2..=MONITOR_TIMEOUT_MAX).contains(&timeout) {
            return Err(self.unsupported(
                &field("timeout"),
                format!("timeout {timeout} is outside AS3's 2-{MONITOR_TIMEOUT_MAX} seconds"),
            ));
        }
        // k8s-bigip-ctlr passed such monitors through; the operator's CRD refuses them. The
        // ConfigMap keeps working with the smallest timeout the operator accepts, and says so.
        let timeout = if timeout <= interval {
            self.warnings.push(format!(
                "{}: timeout {timeout} is not above interval {interval}; using {} (the operator needs timeout > interval; \
                 F5 recommends 3 x interval + 1 = {})",
                field("timeout"),
                interval + 1,
                3 * interval + 1
            ));
            interval + 1
        } else {
            timeout
        };
        Ok(HealthMonitor {
            monitor_type,
            send: monitor.send.clone(),
            receive: monitor.recv.clone(),
            interval: i32::try_from(interval).unwrap_or(i32::MAX),
            timeout: i32::try_from(timeout).unwrap_or(i32::MAX),
            target_port: None,
            time_until_up: None,
            ssl_profile: None,
        })
    }

    /// `sslProfile` → TLS terminated with an existing BIG-IP client SSL profile. k8s-bigip-ctlr
    /// added no HTTP redirect, so neither does the translation.
    fn tls(&mut self, profile: Option<&SslProfile>) -> Result<Option<Tls>, LegacyError> {
        let Some(profile) = profile else { return Ok(None) };
        let (names, field) = match (&profile.f5_profile_name, &profile.f5_profile_names) {
            (Some(name), _) => (vec![name.clone()], "/virtualServer/frontend/sslProfile/f5ProfileName"),
            (None, Some(names)) => (names.clone(), "/virtualServer/frontend/sslProfile/f5ProfileNames"),
            (None, None) => (Vec::new(), "/virtualServer/frontend/sslProfile"),
        };
        let name = match names.as_slice() {
            [] => {
                self.warnings.push(format!(
                    "ConfigMap {}: {field} names no profile: the virtual server is plain HTTP, as with k8s-bigip-ctlr",
                    self.config_map
                ));
                return Ok(None);
            }
            [name] => name,
            _ => {
                return Err(self.unsupported(
                    field,
                    format!(
                        "{} client SSL profiles (selected by SNI): a VirtualServer takes one clientSslProfile",
                        names.len()
                    ),
                ))
            }
        };
        let path = profile_path(name).ok_or_else(|| {
            self.unsupported(field, format!("{name:?} is not a BIG-IP profile name of the form partition/name"))
        })?;
        Ok(Some(Tls {
            mode: TlsMode::Terminate,
            secret_name: None,
            client_ssl_profile: Some(path),
            server_ssl_profile: None,
            backend_ca_secret_name: None,
            http_redirect: false,
            allow_http: false,
            http_port: None,
            min_version: None,
            max_version: None,
            ciphers: None,
            cipher_group: None,
            client_certificates: None,
        }))
    }
}

/// Legacy `partition/name` (k8s-bigip-ctlr split it at the one `/`) → `/partition/name`.
fn profile_path(name: &str) -> Option<String> {
    let (partition, profile) = name.strip_prefix('/').unwrap_or(name).split_once('/')?;
    let part_ok =
        |s: &str| !s.is_empty() && s.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'));
    (part_ok(partition) && part_ok(profile)).then(|| format!("/{partition}/{profile}"))
}

/// The pool's name: the Service name when it fits the pool-name rule (Service names
/// normally do), else a lower-cased, `-`-separated form of it.
pub fn pool_name(service: &str) -> String {
    super::sanitized_name(service, "svc-", 63)
}

/// `cm-<ConfigMap name>`. A name that is not a valid Kubernetes name (only possible in files
/// never applied to a cluster, e.g. `myApp.vs`) is lower-cased with other characters replaced
/// by `-`, and gets a hash of the original so that two such names cannot collide.
pub fn generated_name(config_map_name: &str) -> String {
    const MAX: usize = 253;
    let valid = !config_map_name.is_empty()
        && config_map_name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '.')
        && config_map_name.ends_with(|c: char| c.is_ascii_alphanumeric());
    if valid && GENERATED_NAME_PREFIX.len() + config_map_name.len() <= MAX {
        return format!("{GENERATED_NAME_PREFIX}{config_map_name}");
    }
    let digest = hex::encode(Sha256::digest(config_map_name.as_bytes()));
    let suffix = &digest[..8];
    let mut base: String =
        config_map_name.chars().map(|c| if c.is_ascii_alphanumeric() { c.to_ascii_lowercase() } else { '-' }).collect();
    base.truncate(MAX - GENERATED_NAME_PREFIX.len() - suffix.len() - 1);
    format!("{GENERATED_NAME_PREFIX}{base}-{suffix}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn config_map(schema: &str, data: &Value) -> ConfigMap {
        ConfigMap {
            metadata: ObjectMeta {
                name: Some("shop.vs".into()),
                namespace: Some("apps".into()),
                uid: Some("0f1e2d3c-aaaa-bbbb-cccc-000000000001".into()),
                labels: Some(BTreeMap::from([(F5TYPE_LABEL.to_string(), F5TYPE_VIRTUAL_SERVER.to_string())])),
                ..ObjectMeta::default()
            },
            data: Some(BTreeMap::from([
                ("schema".to_string(), schema.to_string()),
                ("data".to_string(), data.to_string()),
            ])),
            ..ConfigMap::default()
        }
    }

    fn v(patch: u8) -> String {
        format!("f5schemadb://bigip-virtual-server_v0.1.{patch}.json")
    }

    /// A document every schema version accepts (v0.1.0 requires bindAddr, knows no monitors).
    fn minimal(mode: &str) -> Value {
        json!({"virtualServer": {
            "backend": {"serviceName": "shop", "servicePort": 8080},
            "frontend": {"partition": "k8s", "mode": mode, "balance": "round-robin",
                "virtualAddress": {"bindAddr": "10.1.10.80", "port": 80}}}})
    }

    fn with_frontend(mut doc: Value, key: &str, value: Value) -> Value {
        doc["virtualServer"]["frontend"][key] = value;
        doc
    }

    fn with_monitors(mut doc: Value, monitors: Value) -> Value {
        doc["virtualServer"]["backend"]["healthMonitors"] = monitors;
        doc
    }

    fn translate(schema: &str, data: &Value) -> Result<Translation, LegacyError> {
        translate_config_map(&config_map(schema, data))
    }

    fn virtual_server(t: Translation) -> VirtualServer {
        match t.object {
            Translated::VirtualServer(vs) => *vs,
            Translated::TransportServer(ts) => panic!("expected a VirtualServer, got {ts:?}"),
        }
    }

    fn transport_server(t: Translation) -> TransportServer {
        match t.object {
            Translated::TransportServer(ts) => *ts,
            Translated::VirtualServer(vs) => panic!("expected a TransportServer, got {vs:?}"),
        }
    }

    fn unsupported_field(result: Result<Translation, LegacyError>) -> String {
        match result {
            Err(LegacyError::Unsupported { field, reason, .. }) => {
                assert!(!reason.is_empty());
                field
            }
            other => panic!("expected Unsupported, got {other:?}"),
        }
    }

    fn schema_violations(result: Result<Translation, LegacyError>) -> (String, Vec<LegacySchemaViolation>) {
        match result {
            Err(LegacyError::Schema { schema, violations, .. }) => (schema, violations),
            other => panic!("expected a schema error, got {other:?}"),
        }
    }

    #[test]
    fn every_version_uri_selects_its_own_schema() {
        for patch in 0..8u8 {
            let version = SchemaVersion::from_uri(&v(patch)).expect("known version");
            assert_eq!(version.file_name(), format!("bigip-virtual-server_v0.1.{patch}.json"));
            let id: Value = serde_json::from_str(version.schema_text()).expect("schema is JSON");
            assert_eq!(id["id"], json!(format!("f5schemadb://bigip-virtual-server_v0.1.{patch}.json")));
            virtual_server(translate(&v(patch), &minimal("http")).unwrap_or_else(|e| panic!("v0.1.{patch}: {e}")));
        }
        for unknown in [
            "f5schemadb://bigip-virtual-server_v0.1.8.json",
            "f5schemadb://bigip-virtual-server_v0.1.07.json",
            "f5schemadb://bigip-virtual-server_v0.2.0.json",
            "f5schemadb://bigip-iapp_v0.1.3.json",
            "bigip-virtual-server_v0.1.3.json",
            "",
        ] {
            assert_eq!(SchemaVersion::from_uri(unknown), None, "{unknown}");
        }
    }

    #[test]
    fn an_unknown_schema_is_an_error_naming_the_value() {
        let err = translate("f5schemadb://bigip-virtual-server_v0.1.9.json", &minimal("http")).expect_err("unknown");
        assert!(matches!(&err, LegacyError::UnknownSchema { value, .. } if value.ends_with("v0.1.9.json")));
        assert!(err.to_string().contains("apps/shop.vs") && err.to_string().contains("v0.1.9.json"), "{err}");
    }

    #[test]
    fn the_version_named_decides_what_validates() {
        // Field by field, what one version added and the previous one refused.
        let cases: [(u8, Value, &str); 6] = [
            (
                0,
                with_frontend(minimal("http"), "balance", json!("least-connections-member")),
                "/virtualServer/frontend/balance",
            ),
            (1, with_monitors(minimal("http"), json!([{"protocol": "tcp"}])), "/virtualServer/backend"),
            (
                2,
                with_frontend(minimal("http"), "virtualAddress", json!({"port": 80})),
                "/virtualServer/frontend/virtualAddress",
            ),
            (4, with_frontend(minimal("udp"), "balance", json!("round-robin")), "/virtualServer/frontend/mode"),
            (
                5,
                with_monitors(minimal("http"), json!([{"protocol": "http", "recv": "200"}])),
                "/virtualServer/backend/healthMonitors/0",
            ),
            (
                6,
                with_frontend(minimal("http"), "balance", json!("a-mode-of-my-own")),
                "/virtualServer/frontend/balance",
            ),
        ];
        for (older, doc, path) in cases {
            let (schema, violations) = schema_violations(translate(&v(older), &doc));
            assert_eq!(schema, format!("bigip-virtual-server_v0.1.{older}.json"));
            assert!(violations.iter().any(|x| x.path == path), "v0.1.{older}: {violations:#?}");
            // The next version accepts the document (as far as its schema goes).
            let newer = translate(&v(older + 1), &doc);
            assert!(!matches!(newer, Err(LegacyError::Schema { .. })), "v0.1.{}: {newer:?}", older + 1);
        }
    }

    #[test]
    fn schema_errors_carry_the_json_path_of_the_field() {
        let doc = with_frontend(minimal("http"), "virtualAddress", json!({"bindAddr": "10.1.10.80", "port": 500000}));
        let err = translate(&v(7), &doc).expect_err("port too large");
        let (_, violations) = schema_violations(Err(err.clone()));
        assert_eq!(violations[0].path, "/virtualServer/frontend/virtualAddress/port", "{violations:#?}");
        assert!(err.to_string().contains("/virtualServer/frontend/virtualAddress/port: 500000"), "{err}");

        let doc = with_frontend(minimal("http"), "virtualAddress", json!({"bindAddr": "10.1.10.260", "port": 80}));
        let (_, violations) = schema_violations(translate(&v(7), &doc));
        assert!(
            violations.iter().any(|x| x.path == "/virtualServer/frontend/virtualAddress/bindAddr"),
            "{violations:#?}"
        );
        let (_, violations) = schema_violations(translate(&v(0), &doc));
        assert!(
            violations.iter().any(|x| x.path == "/virtualServer/frontend/virtualAddress/bindAddr"),
            "{violations:#?}"
        );

        let doc = with_frontend(minimal("http"), "sourceAddressTranslation", json!({"type": "automap"}));
        let (_, violations) = schema_violations(translate(&v(7), &doc));
        assert!(violations
            .iter()
            .any(|x| x.path == "/virtualServer/frontend" && x.message.contains("sourceAddressTranslation")));
    }

    #[test]
    fn v0_1_0_string_min_length_is_read_as_a_number() {
        let doc = with_frontend(minimal("http"), "sslProfile", json!({"f5ProfileName": ""}));
        let (_, violations) = schema_violations(translate(&v(0), &doc));
        assert_eq!(violations[0].path, "/virtualServer/frontend/sslProfile/f5ProfileName", "{violations:#?}");
    }

    #[test]
    fn data_that_is_not_json_or_missing_is_an_error() {
        let mut cm = config_map(&v(7), &minimal("http"));
        cm.data.as_mut().expect("data").insert("data".into(), "{ not json".into());
        assert!(matches!(translate_config_map(&cm), Err(LegacyError::InvalidJson { .. })));
        cm.data.as_mut().expect("data").remove("data");
        assert!(matches!(translate_config_map(&cm), Err(LegacyError::MissingKey { key: "data", .. })));
        cm.data.as_mut().expect("data").remove("schema");
        assert!(matches!(translate_config_map(&cm), Err(LegacyError::MissingKey { key: "schema", .. })));
    }

    #[test]
    fn only_virtual_server_config_maps_are_translated() {
        let mut cm = config_map(&v(7), &minimal("http"));
        cm.metadata.labels = Some(BTreeMap::from([(F5TYPE_LABEL.to_string(), "iapp".to_string())]));
        assert!(
            matches!(translate_config_map(&cm), Err(LegacyError::NotVirtualServer { found: Some(f), .. }) if f == "iapp")
        );
        cm.metadata.labels = None;
        assert!(matches!(translate_config_map(&cm), Err(LegacyError::NotVirtualServer { found: None, .. })));
    }

    #[test]
    fn http_mode_becomes_a_virtual_server_owned_by_the_config_map() {
        let t = translate(&v(7), &minimal("http")).expect("translates");
        assert!(t.warnings.is_empty(), "{:?}", t.warnings);
        let vs = virtual_server(t);
        assert_eq!(vs.metadata.name.as_deref(), Some("cm-shop.vs"));
        assert_eq!(vs.metadata.namespace.as_deref(), Some("apps"));
        assert_eq!(
            vs.metadata.labels.as_ref().and_then(|l| l.get(GENERATED_FROM_LABEL)).map(String::as_str),
            Some("ConfigMap")
        );
        let owner = &vs.metadata.owner_references.as_ref().expect("owner")[0];
        assert_eq!(
            (owner.api_version.as_str(), owner.kind.as_str(), owner.name.as_str(), owner.controller),
            ("v1", "ConfigMap", "shop.vs", Some(true))
        );
        assert_eq!(owner.uid, "0f1e2d3c-aaaa-bbbb-cccc-000000000001");
        let spec = vs.spec;
        assert_eq!(
            (spec.virtual_address.as_str(), spec.port, spec.partition.as_deref()),
            ("10.1.10.80", 80, Some("k8s"))
        );
        assert_eq!(spec.pools.len(), 1);
        let pool = &spec.pools[0];
        assert_eq!((pool.name.as_str(), pool.service.as_str()), ("shop", "shop"));
        assert_eq!(pool.service_port, IntOrString::Int(8080));
        assert_eq!(spec.snat, SnatMode::Automap);
        assert!(spec.tls.is_none() && spec.default_pool.is_none());
    }

    #[test]
    fn without_a_uid_there_is_no_owner_reference_and_a_warning_says_so() {
        let mut cm = config_map(&v(7), &minimal("http"));
        cm.metadata.uid = None;
        let t = translate_config_map(&cm).expect("translates");
        assert!(t.warnings.iter().any(|w| w.contains("ownerReference")), "{:?}", t.warnings);
        assert!(virtual_server(t).metadata.owner_references.is_none());
    }

    #[test]
    fn tcp_udp_and_a_missing_mode_become_transport_servers() {
        let ts = transport_server(translate(&v(7), &minimal("tcp")).expect("tcp"));
        assert_eq!(ts.spec.protocol, TransportProtocol::Tcp);
        assert_eq!((ts.spec.virtual_address.as_str(), ts.spec.port), ("10.1.10.80", 80));
        assert_eq!(ts.spec.pool.name, "shop");
        let ts = transport_server(translate(&v(5), &minimal("udp")).expect("udp"));
        assert_eq!(ts.spec.protocol, TransportProtocol::Udp);
        // k8s-bigip-ctlr's DEFAULT_MODE is tcp.
        let mut doc = minimal("tcp");
        doc["virtualServer"]["frontend"].as_object_mut().expect("object").remove("mode");
        let ts = transport_server(translate(&v(3), &doc).expect("no mode"));
        assert_eq!(ts.spec.protocol, TransportProtocol::Tcp);
    }

    #[test]
    fn balance_maps_to_the_load_balancing_mode_and_defaults_to_round_robin() {
        let mut doc = minimal("http");
        doc["virtualServer"]["frontend"].as_object_mut().expect("object").remove("balance");
        assert_eq!(
            virtual_server(translate(&v(7), &doc).expect("ok")).spec.pools[0].load_balancing_mode,
            LoadBalancingMode::RoundRobin
        );
        let doc = with_frontend(minimal("http"), "balance", json!("least-connections-member"));
        assert_eq!(
            virtual_server(translate(&v(1), &doc).expect("ok")).spec.pools[0].load_balancing_mode,
            LoadBalancingMode::LeastConnectionsMember
        );
        let doc = with_frontend(minimal("http"), "balance", json!("ratio-session"));
        assert_eq!(
            virtual_server(translate(&v(7), &doc).expect("ok")).spec.pools[0].load_balancing_mode,
            LoadBalancingMode::RatioSession
        );
        // v0.1.7 accepts any string; an unknown mode cannot be programmed.
        let doc = with_frontend(minimal("http"), "balance", json!("super-duper-mojo"));
        assert_eq!(unsupported_field(translate(&v(7), &doc)), "/virtualServer/frontend/balance");
    }

    #[test]
    fn health_monitors_map_protocol_timing_send_and_recv() {
        let doc = with_monitors(
            minimal("http"),
            json!([
                {"protocol": "http", "interval": 10, "timeout": 31, "send": "GET /healthz HTTP/1.0\r\n\r\n", "recv": "200 OK"},
                {"protocol": "tcp"},
                {"protocol": "udp", "interval": 3, "timeout": 10, "send": "ping"}
            ]),
        );
        let monitors = virtual_server(translate(&v(7), &doc).expect("ok")).spec.pools.remove(0).monitors;
        assert_eq!(
            monitors,
            vec![
                HealthMonitor {
                    monitor_type: MonitorType::Http,
                    send: Some("GET /healthz HTTP/1.0\r\n\r\n".into()),
                    receive: Some("200 OK".into()),
                    interval: 10,
                    timeout: 31,
                    target_port: None,
                    time_until_up: None,
                    ssl_profile: None
                },
                HealthMonitor {
                    monitor_type: MonitorType::Tcp,
                    send: None,
                    receive: None,
                    interval: 5,
                    timeout: 16,
                    target_port: None,
                    time_until_up: None,
                    ssl_profile: None
                },
                HealthMonitor {
                    monitor_type: MonitorType::Udp,
                    send: Some("ping".into()),
                    receive: None,
                    interval: 3,
                    timeout: 10,
                    target_port: None,
                    time_until_up: None,
                    ssl_profile: None
                },
            ]
        );
    }

    #[test]
    fn monitors_the_operator_cannot_program_are_unsupported_with_their_field() {
        let doc = with_monitors(
            minimal("http"),
            json!([{"protocol": "tcp"}, {"protocol": "tcp", "interval": 30, "timeout": 20}]),
        );
        let t = translate(&v(7), &doc).expect("a timeout at or below the interval is raised");
        assert_eq!(virtual_server(t.clone()).spec.pools[0].monitors[1].timeout, 31);
        assert!(
            t.warnings
                .iter()
                .any(|w| w.contains("/virtualServer/backend/healthMonitors/1/timeout") && w.contains("using 31")),
            "{:?}",
            t.warnings
        );
        let doc = with_monitors(minimal("http"), json!([{"protocol": "http", "interval": 7200, "timeout": 86400}]));
        assert_eq!(unsupported_field(translate(&v(7), &doc)), "/virtualServer/backend/healthMonitors/0/interval");
        let doc = with_monitors(minimal("http"), json!([{"protocol": "http", "interval": 5, "timeout": 1000}]));
        assert_eq!(unsupported_field(translate(&v(7), &doc)), "/virtualServer/backend/healthMonitors/0/timeout");
        let doc = with_monitors(minimal("http"), json!(vec![json!({"protocol": "tcp"}); 9]));
        assert_eq!(unsupported_field(translate(&v(7), &doc)), "/virtualServer/backend/healthMonitors");
    }

    #[test]
    fn ssl_profile_becomes_tls_with_the_client_ssl_profile_and_no_redirect() {
        let doc = with_frontend(minimal("http"), "sslProfile", json!({"f5ProfileName": "Common/testcert"}));
        let tls = virtual_server(translate(&v(3), &doc).expect("ok")).spec.tls.expect("tls");
        assert_eq!(tls.mode, TlsMode::Terminate);
        assert_eq!(tls.client_ssl_profile.as_deref(), Some("/Common/testcert"));
        assert!(tls.secret_name.is_none() && !tls.http_redirect);

        let doc = with_frontend(minimal("http"), "sslProfile", json!({"f5ProfileNames": ["velcro/testcert"]}));
        let tls = virtual_server(translate(&v(4), &doc).expect("ok")).spec.tls.expect("tls");
        assert_eq!(tls.client_ssl_profile.as_deref(), Some("/velcro/testcert"));

        let doc = with_frontend(minimal("http"), "sslProfile", json!({"f5ProfileNames": []}));
        let t = translate(&v(7), &doc).expect("ok");
        assert!(t.warnings.iter().any(|w| w.contains("f5ProfileNames")), "{:?}", t.warnings);
        assert!(virtual_server(t).spec.tls.is_none());

        let doc = with_frontend(minimal("http"), "sslProfile", json!({"f5ProfileNames": ["Common/a", "Common/b"]}));
        assert_eq!(unsupported_field(translate(&v(7), &doc)), "/virtualServer/frontend/sslProfile/f5ProfileNames");
        let doc = with_frontend(minimal("http"), "sslProfile", json!({"f5ProfileName": "testcert"}));
        assert_eq!(unsupported_field(translate(&v(7), &doc)), "/virtualServer/frontend/sslProfile/f5ProfileName");
        let doc = with_frontend(minimal("udp"), "sslProfile", json!({"f5ProfileName": "Common/testcert"}));
        assert_eq!(unsupported_field(translate(&v(7), &doc)), "/virtualServer/frontend/sslProfile");
        // tcp: TLS offload on a TransportServer with the profile.
        let doc = with_frontend(minimal("tcp"), "sslProfile", json!({"f5ProfileName": "Common/testcert"}));
        let Translated::TransportServer(ts) = translate(&v(7), &doc).expect("ok").object else { panic!("a TS") };
        let tls = ts.spec.tls.expect("tls");
        assert_eq!(tls.client_ssl_profile.as_deref(), Some("/Common/testcert"));
        assert!(tls.secret_name.is_none());
    }

    #[test]
    fn ipv6_bind_addresses_are_kept_and_route_domains_are_unsupported() {
        let doc = with_frontend(minimal("http"), "virtualAddress", json!({"bindAddr": "2001:db8::10", "port": 443}));
        assert_eq!(virtual_server(translate(&v(7), &doc).expect("ok")).spec.virtual_address, "2001:db8::10");
        let doc = with_frontend(minimal("http"), "virtualAddress", json!({"bindAddr": "10.1.10.80%2", "port": 443}));
        assert_eq!(unsupported_field(translate(&v(7), &doc)), "/virtualServer/frontend/virtualAddress/bindAddr");
    }

    #[test]
    fn pool_only_config_maps_program_only_their_pool_and_address_less_ones_need_the_annotation() {
        let mut doc = minimal("http");
        doc["virtualServer"]["frontend"].as_object_mut().expect("object").remove("virtualAddress");
        let spec = virtual_server(translate(&v(3), &doc).expect("pool-only")).spec;
        assert_eq!((spec.virtual_address.as_str(), spec.port, spec.pools.len()), ("", 0, 1));
        assert!(spec.tls.is_none());

        let doc = with_frontend(minimal("http"), "virtualAddress", json!({"port": 10000}));
        assert_eq!(unsupported_field(translate(&v(3), &doc)), "/virtualServer/frontend/virtualAddress/bindAddr");
        // k8s-bigip-ctlr then took the address from the virtual-server.f5.com/ip annotation.
        let mut cm = config_map(&v(3), &doc);
        cm.metadata.annotations = Some(BTreeMap::from([(BIND_ADDR_ANNOTATION.to_string(), "1.2.3.4".to_string())]));
        let spec = virtual_server(translate_config_map(&cm).expect("annotated")).spec;
        assert_eq!((spec.virtual_address.as_str(), spec.port), ("1.2.3.4", 10000));
        cm.metadata.annotations = Some(BTreeMap::from([(BIND_ADDR_ANNOTATION.to_string(), "not-an-ip".to_string())]));
        assert_eq!(
            unsupported_field(translate_config_map(&cm)),
            format!("metadata.annotations[{BIND_ADDR_ANNOTATION}]")
        );
    }

    #[test]
    fn iapp_frontends_are_unsupported() {
        let doc = json!({"virtualServer": {
            "backend": {"serviceName": "shop", "servicePort": 80},
            "frontend": {"partition": "k8s", "iapp": "/Common/f5.http",
                "iappPoolMemberTable": {"name": "pool__members", "columns": [{"name": "addr", "kind": "IPAddress"}]},
                "iappOptions": {"description": "x"}, "iappVariables": {"pool__addr": "127.0.0.2"}}}});
        assert_eq!(unsupported_field(translate(&v(7), &doc)), "/virtualServer/frontend/iapp");
        // An iApp frontend is validated against the iApp branch, so its errors have a path too.
        let mut bad = doc.clone();
        bad["virtualServer"]["frontend"]["iappVariables"] = json!({"pool__addr": ""});
        let (_, violations) = schema_violations(translate(&v(7), &bad));
        assert!(
            violations.iter().any(|x| x.path == "/virtualServer/frontend/iappVariables/pool__addr"),
            "{violations:#?}"
        );
    }

    #[test]
    fn the_common_partition_is_unsupported() {
        let doc = with_frontend(minimal("http"), "partition", json!("Common"));
        assert_eq!(unsupported_field(translate(&v(7), &doc)), "/virtualServer/frontend/partition");
    }

    #[test]
    fn names_are_valid_kubernetes_and_pool_names() {
        assert_eq!(generated_name("k8s.vs"), "cm-k8s.vs");
        let odd = generated_name("myApp.vs");
        assert!(odd.starts_with("cm-myapp-vs-") && odd.len() == "cm-myapp-vs-".len() + 8, "{odd}");
        assert_ne!(generated_name("myApp.vs"), generated_name("myapp-vs"));
        assert!(generated_name(&"a".repeat(300)).len() <= 253);
        assert_eq!(pool_name("my-mynginx-service"), "my-mynginx-service");
        assert_eq!(pool_name("myService"), "myservice");
        assert_eq!(pool_name("9lives_svc"), "svc-9lives-svc");
        for name in ["my-mynginx-service", "myService", "9lives_svc", "x-", &"b".repeat(80)] {
            let pool = pool_name(name);
            assert!(
                pool.len() <= 63 && pool.starts_with(|c: char| c.is_ascii_lowercase()) && !pool.ends_with('-'),
                "{pool}"
            );
        }
    }
}
