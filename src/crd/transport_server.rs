//! The `TransportServer` custom resource: an L4 (TCP or UDP) virtual server on the BIG-IP.

use kube::{CustomResource, KubeSchema};
use serde::{Deserialize, Serialize};

use super::common::{IRule, Persistence, Pool, PoolMemberType, Profiles, SnatMode, VirtualAddressOptions};
use super::virtual_server::{ClientCertificates, Tls, TlsMode, TlsVersion, VirtualServerStatus};

/// A TCP or UDP virtual server on the BIG-IP: a virtual address and port whose connections
/// (or datagrams) are balanced over the endpoints of one Service port.
#[allow(clippy::duplicated_attributes)]
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[kube(
    group = "bigip.operator.dev",
    version = "v1alpha1",
    kind = "TransportServer",
    namespaced,
    status = "VirtualServerStatus",
    shortname = "bts",
    category = "bigip",
    doc = "A TransportServer: a TCP or UDP virtual server on the BIG-IP, balancing over Service endpoints.",
    printcolumn(name = "Address", type_ = "string", json_path = ".spec.virtualAddress"),
    printcolumn(name = "Port", type_ = "integer", json_path = ".spec.port"),
    printcolumn(name = "Protocol", type_ = "string", json_path = ".spec.protocol"),
    printcolumn(name = "Partition", type_ = "string", json_path = ".status.partition"),
    printcolumn(
        name = "Programmed",
        type_ = "string",
        json_path = ".status.conditions[?(@.type==\"Programmed\")].status"
    ),
    printcolumn(name = "Members", type_ = "integer", json_path = ".status.members"),
    printcolumn(name = "Age", type_ = "date", json_path = ".metadata.creationTimestamp")
)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("!has(self.virtualAddress) || !has(self.addressPool)").message("set virtualAddress or addressPool, not both"))]
#[x_kube(validation = Rule::new("has(self.port) == (has(self.virtualAddress) || has(self.addressPool))").message("port goes with virtualAddress or addressPool; without either the TransportServer programs only its pool"))]
#[x_kube(validation = Rule::new("!has(self.snatPool) || self.snat == 'automap'").message("snatPool replaces automap; it cannot be combined with snat: none"))]
#[x_kube(validation = Rule::new("!has(self.tls) || self.protocol != 'udp'").message("TLS offload is for TCP; a UDP TransportServer cannot take tls"))]
#[x_kube(validation = Rule::new("!has(self.persistence) || self.persistence != 'cookie'").message("cookie persistence needs HTTP; use a VirtualServer, or source-address persistence"))]
pub struct TransportServerSpec {
    /// IPv4 or IPv6 address the BIG-IP listens on, e.g. `10.1.10.53`.
    /// Either this or `addressPool`.
    #[x_kube(validation = Rule::new("self.contains('%') ? (self.split('%').size() == 2 && isIP(self.split('%')[0]) && self.split('%')[1].matches('^[0-9]{1,5}$')) : isIP(self)").message("virtualAddress must be an IPv4 or IPv6 address, optionally with a route domain (10.1.10.80%2)"))]
    #[schemars(length(max = 51))]
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub virtual_address: String,

    /// Take the address from this BigIpAddressPool instead of naming one (docs/loadbalancer.md):
    /// it is allocated once, recorded in the pool, and shown in the annotation
    /// `bigip.operator.dev/allocated-address`. Either this or `virtualAddress`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 253), regex(pattern = r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$"))]
    pub address_pool: Option<String>,

    /// Port of the virtual server, 1-65535. Absent from a pool-only TransportServer (no
    /// `virtualAddress` or `addressPool`), which programs only its pool.
    #[schemars(range(min = 1, max = 65535))]
    #[serde(default, skip_serializing_if = "is_zero")]
    pub port: i32,

    /// `tcp` (default) or `udp`.
    #[serde(default)]
    pub protocol: TransportProtocol,

    /// BIG-IP partition (AS3 tenant). Defaults to the operator's `--partition`; same rules as
    /// a VirtualServer's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[x_kube(validation = Rule::new("self != 'Common'").message("the Common partition is reserved; choose another partition"))]
    #[x_kube(validation = Rule::new("!(self in ['class', 'constants', 'controls', 'id', 'label', 'remark', 'schemaVersion', 'scratch', 'target', 'updateMode'])").message("this name is an AS3 declaration property; choose another partition"))]
    #[schemars(length(min = 1, max = 64), regex(pattern = r"^[A-Za-z][0-9A-Za-z_.-]*$"))]
    pub partition: Option<String>,

    /// The pool of Service endpoints that receives the traffic.
    pub pool: Pool,

    /// Source address translation: `automap` (default) or `none`.
    #[serde(default)]
    pub snat: SnatMode,

    /// Full path of an existing BIG-IP SNAT pool, e.g. `/Common/snatpool-k8s`; replaces
    /// automap.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 3, max = 255), regex(pattern = r"^/[A-Za-z0-9_.-]+(/[A-Za-z0-9_.-]+)+$"))]
    pub snat_pool: Option<String>,

    /// Session persistence: `none` (default), `source-address` or `destination-address`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub persistence: Option<Persistence>,

    /// iRules run by the virtual server, in order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 16))]
    #[x_kube(validation = Rule::new("self.all(r, !has(r.name) || self.exists_one(q, has(q.name) && q.name == r.name))").message("iRule names must be unique"))]
    pub i_rules: Vec<IRule>,

    /// Client source ranges (CIDR) allowed to connect; empty allows every client.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 64))]
    #[schemars(inner(length(max = 43)))]
    #[x_kube(validation = Rule::new("self.all(r, isCIDR(r))").message("allowSourceRanges must hold CIDRs such as 10.0.0.0/8"))]
    pub allow_source_ranges: Vec<String>,

    /// A BigIpPolicy of the namespace whose settings fill what this object leaves out
    /// (profiles, TLS settings, WAF policy, source ranges, persistence, VLANs, mirroring).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 253), regex(pattern = r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$"))]
    pub policy: Option<String>,

    /// Existing BIG-IP profiles to use (HTTP, HTTP/2, TCP, OneConnect, compression, WebSocket,
    /// analytics, request logging, persistence), by full path.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub profiles: Option<Profiles>,

    /// Existing BIG-IP VLANs the virtual server listens on (full paths, `/Common/external`);
    /// empty: every VLAN.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 32))]
    #[schemars(inner(length(min = 3, max = 255), regex(pattern = r"^/[A-Za-z0-9_.-]+(/[A-Za-z0-9_.-]+)+$")))]
    pub allow_vlans: Vec<String>,

    /// Mirror connections to the standby BIG-IP of an HA pair (AS3 `mirroring: L4`).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub connection_mirroring: bool,

    /// Options of the virtual address (ARP, ICMP echo, route advertisement).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub virtual_address_options: Option<VirtualAddressOptions>,

    /// How pool members are found, overriding the operator-wide `--pool-member-type`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pool_member_type: Option<PoolMemberType>,

    /// TLS offload (TCP only): the BIG-IP decrypts client connections with a certificate from
    /// a Secret or an existing client SSL profile, and sends the plain stream to the pods —
    /// or encrypts it again (`mode: reencrypt`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls: Option<TransportTls>,
}

/// TLS offload of a TransportServer.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("has(self.secretName) != has(self.clientSslProfile)").message("TLS offload needs exactly one of secretName and clientSslProfile"))]
#[x_kube(validation = Rule::new("self.mode == 'reencrypt' || (!has(self.serverSslProfile) && !has(self.backendCaSecretName))").message("serverSslProfile and backendCaSecretName apply to mode reencrypt only"))]
#[x_kube(validation = Rule::new("!has(self.serverSslProfile) || !has(self.backendCaSecretName)").message("use serverSslProfile or backendCaSecretName, not both"))]
#[x_kube(validation = Rule::new("!has(self.ciphers) || !has(self.cipherGroup)").message("use ciphers or cipherGroup, not both"))]
#[x_kube(validation = Rule::new("has(self.secretName) || (!has(self.minVersion) && !has(self.maxVersion) && !has(self.ciphers) && !has(self.cipherGroup) && !has(self.clientCertificates))").message("minVersion, maxVersion, ciphers, cipherGroup and clientCertificates go with secretName (an existing clientSslProfile has its own)"))]
pub struct TransportTls {
    /// `terminate` (default): plain TCP to the pods; `reencrypt`: TLS again towards the pods.
    #[serde(default)]
    pub mode: TransportTlsMode,
    /// A `kubernetes.io/tls` Secret in the namespace holding the certificate (`tls.crt`, with
    /// its chain) and the unencrypted private key (`tls.key`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 253))]
    pub secret_name: Option<String>,
    /// Instead of a Secret: full path of an existing BIG-IP client SSL profile.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 3, max = 255), regex(pattern = r"^/[A-Za-z0-9_.-]+(/[A-Za-z0-9_.-]+)+$"))]
    pub client_ssl_profile: Option<String>,
    /// reencrypt: full path of an existing BIG-IP server SSL profile towards the pods. Without
    /// it (and without `backendCaSecretName`) the pods' certificates are not verified.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 3, max = 255), regex(pattern = r"^/[A-Za-z0-9_.-]+(/[A-Za-z0-9_.-]+)+$"))]
    pub server_ssl_profile: Option<String>,
    /// reencrypt: a Secret whose `ca.crt` holds the CA certificates the pods' certificates
    /// must chain to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 253))]
    pub backend_ca_secret_name: Option<String>,
    /// Oldest TLS version clients may use (with `secretName`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_version: Option<TlsVersion>,
    /// Newest TLS version clients may use (with `secretName`); `1.3` needs `cipherGroup`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_version: Option<TlsVersion>,
    /// OpenSSL-style cipher string (with `secretName`). Not with `cipherGroup`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 1024), regex(pattern = r"^[A-Za-z0-9!+:@_.,=-]+$"))]
    pub ciphers: Option<String>,
    /// An existing BIG-IP cipher group by full path (with `secretName`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 3, max = 255), regex(pattern = r"^/[A-Za-z0-9_.-]+(/[A-Za-z0-9_.-]+)+$"))]
    pub cipher_group: Option<String>,
    /// Ask clients for certificates (mutual TLS; with `secretName`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_certificates: Option<ClientCertificates>,
}

/// Where a TransportServer's decrypted stream goes.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum TransportTlsMode {
    #[default]
    Terminate,
    Reencrypt,
}

impl TransportTls {
    /// The same settings as a VirtualServer's `tls` (no plain HTTP beside it), to be resolved
    /// the same way.
    pub fn as_virtual_server_tls(&self) -> Tls {
        Tls {
            mode: match self.mode {
                TransportTlsMode::Terminate => TlsMode::Terminate,
                TransportTlsMode::Reencrypt => TlsMode::Reencrypt,
            },
            secret_name: self.secret_name.clone(),
            client_ssl_profile: self.client_ssl_profile.clone(),
            server_ssl_profile: self.server_ssl_profile.clone(),
            backend_ca_secret_name: self.backend_ca_secret_name.clone(),
            http_redirect: false,
            allow_http: false,
            http_port: None,
            min_version: self.min_version,
            max_version: self.max_version,
            ciphers: self.ciphers.clone(),
            cipher_group: self.cipher_group.clone(),
            client_certificates: self.client_certificates.clone(),
        }
    }
}

/// The L4 protocol of a TransportServer.
#[derive(
    Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord, schemars::JsonSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum TransportProtocol {
    #[default]
    Tcp,
    Udp,
}

fn is_zero(value: &i32) -> bool {
    *value == 0
}
