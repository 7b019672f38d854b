//! The `VirtualServer` custom resource: an L7 (HTTP) virtual server on the BIG-IP.

use kube::{CustomResource, KubeSchema};
use serde::{Deserialize, Serialize};

use super::common::{Condition, IRule, Persistence, Pool, PoolMemberType, Profiles, SnatMode, VirtualAddressOptions};

/// An HTTP virtual server on the BIG-IP: a virtual address and port whose traffic is balanced
/// over the endpoints of Kubernetes Services.
// Each `printcolumn(...)` repeats `type_ = ...`, which clippy mistakes for a duplicated attribute.
#[allow(clippy::duplicated_attributes)]
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[kube(
    group = "bigip.operator.dev",
    version = "v1alpha1",
    kind = "VirtualServer",
    namespaced,
    status = "VirtualServerStatus",
    shortname = "bvs",
    category = "bigip",
    doc = "A VirtualServer: an HTTP virtual server on the BIG-IP, balancing over Service endpoints.",
    printcolumn(name = "Address", type_ = "string", json_path = ".spec.virtualAddress"),
    printcolumn(name = "Port", type_ = "integer", json_path = ".spec.port"),
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
#[x_kube(validation = Rule::new("(has(self.virtualAddress) ? 1 : 0) + (has(self.addressPool) ? 1 : 0) + (has(self.listenerGroup) ? 1 : 0) <= 1").message("set at most one of virtualAddress, addressPool and listenerGroup"))]
#[x_kube(validation = Rule::new("has(self.port) == (has(self.virtualAddress) || has(self.addressPool) || has(self.listenerGroup))").message("port goes with virtualAddress, addressPool or listenerGroup; without any of them the VirtualServer programs only its pools"))]
#[x_kube(validation = Rule::new("!has(self.defaultPool) || self.pools.exists(p, p.name == self.defaultPool)").message("defaultPool must name one of the pools"))]
#[x_kube(validation = Rule::new("!has(self.defaultPool) || !has(self.bigipDefaultPool)").message("use defaultPool or bigipDefaultPool, not both"))]
#[x_kube(validation = Rule::new("!has(self.rules) || self.rules.all(r, self.pools.exists(p, p.name == r.pool))").message("every rule's pool must name one of the pools"))]
#[x_kube(validation = Rule::new("!has(self.snatPool) || self.snat == 'automap'").message("snatPool replaces automap; it cannot be combined with snat: none"))]
#[x_kube(validation = Rule::new("!has(self.persistence) || self.persistence != 'destination-address'").message("destination-address persistence is for TransportServers; use cookie or source-address"))]
pub struct VirtualServerSpec {
    /// IPv4 or IPv6 address the BIG-IP listens on (the virtual address), e.g. `10.1.10.80`.
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

    /// Join this BigIpListenerGroup instead of having an address of its own
    /// (docs/listener-groups.md): the group's virtual server serves this VirtualServer's hosts
    /// next to other teams' hosts, with its certificate for them (SNI). Every rule needs a
    /// host; `port` must be the group's. Either this, `virtualAddress` or `addressPool`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 253), regex(pattern = r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$"))]
    pub listener_group: Option<String>,

    /// TCP port of the virtual server, 1-65535. Required with an address; absent from a
    /// pool-only VirtualServer (no `virtualAddress`, `addressPool` or `listenerGroup`), which
    /// programs only its pools, for a virtual server managed outside Kubernetes.
    #[schemars(range(min = 1, max = 65535))]
    #[serde(default, skip_serializing_if = "is_zero")]
    pub port: i32,

    /// BIG-IP partition (AS3 tenant) to create the virtual server in. Defaults to the
    /// operator's `--partition`. `Common` and the names of AS3 declaration properties
    /// (`class`, `id`, `label`, ...) are reserved and refused.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[x_kube(validation = Rule::new("self != 'Common'").message("the Common partition is reserved; choose another partition"))]
    #[x_kube(validation = Rule::new("!(self in ['class', 'constants', 'controls', 'id', 'label', 'remark', 'schemaVersion', 'scratch', 'target', 'updateMode'])").message("this name is an AS3 declaration property; choose another partition"))]
    #[schemars(length(min = 1, max = 64), regex(pattern = r"^[A-Za-z][0-9A-Za-z_.-]*$"))]
    pub partition: Option<String>,

    /// Pools of Service endpoints. The first pool (or `defaultPool`) receives the traffic.
    #[schemars(length(min = 1, max = 64))]
    #[x_kube(validation = Rule::new("self.all(p, self.exists_one(q, q.name == p.name))").message("pool names must be unique"))]
    pub pools: Vec<Pool>,

    /// Name of the pool that receives traffic when no other rule matches. Defaults to the
    /// first pool.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default_pool: Option<String>,

    /// Instead of `defaultPool`: an existing BIG-IP pool (full path, `/Common/fallback`) that
    /// receives the traffic no rule matches.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 3, max = 255), regex(pattern = r"^/[A-Za-z0-9_.-]+(/[A-Za-z0-9_.-]+)+$"))]
    pub bigip_default_pool: Option<String>,

    /// Host and path rules, each sending matching requests to a pool. The most specific rule
    /// wins, whatever the order: exact hosts before wildcard hosts before rules without a
    /// host, then `Exact` paths before longer `Prefix` paths. Requests no rule matches go to
    /// `defaultPool`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 128))]
    pub rules: Vec<RoutingRule>,

    /// Requests for `/` (any host) are redirected (302) to this path, e.g. `/shop`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 2, max = 1024), regex(pattern = r"^/[A-Za-z0-9._~!&'()*+,=:@%/-]+$"))]
    pub app_root: Option<String>,

    /// Fixed redirects answered by the BIG-IP, checked before `rules` (most specific first, as
    /// rules are).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 64))]
    pub redirects: Vec<Redirect>,

    /// TLS on the virtual server: terminate with a certificate from a Secret or an existing
    /// BIG-IP profile, re-encrypt to the pods, or pass through.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls: Option<Tls>,

    /// Source address translation: `automap` (default; the BIG-IP uses its self IPs) or
    /// `none` (the pods must route replies back through the BIG-IP).
    #[serde(default)]
    pub snat: SnatMode,

    /// Full path of an existing BIG-IP SNAT pool to translate source addresses to, e.g.
    /// `/Common/snatpool-k8s`; replaces automap.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 3, max = 255), regex(pattern = r"^/[A-Za-z0-9_.-]+(/[A-Za-z0-9_.-]+)+$"))]
    pub snat_pool: Option<String>,

    /// Session persistence: `none` (default), `cookie` or `source-address`.
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

    /// Full path of an existing BIG-IP Advanced WAF policy to enforce, e.g. `/Common/linux-high`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 3, max = 255), regex(pattern = r"^/[A-Za-z0-9_.-]+(/[A-Za-z0-9_.-]+)+$"))]
    pub waf_policy: Option<String>,

    /// Insert an `X-Forwarded-For` header with the client address into requests to the pods.
    /// Default false.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub x_forwarded_for: bool,

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

    /// Existing BIG-IP LTM policies (full paths) the virtual server runs after its own host
    /// and path rules.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 8))]
    #[schemars(inner(length(min = 3, max = 255), regex(pattern = r"^/[A-Za-z0-9_.-]+(/[A-Za-z0-9_.-]+)+$")))]
    pub ltm_policies: Vec<String>,

    /// Mirror connections to the standby BIG-IP of an HA pair (AS3 `mirroring: L4`).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub connection_mirroring: bool,

    /// Options of the virtual address (ARP, ICMP echo, route advertisement).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub virtual_address_options: Option<VirtualAddressOptions>,

    /// How pool members are found for this virtual server, overriding the operator-wide
    /// `--pool-member-type`: `nodeport` (every Ready node's InternalIP and the Service's
    /// nodePort) or `cluster` (pod IPs from EndpointSlices).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pool_member_type: Option<PoolMemberType>,
}

/// A host and path rule: requests matching it go to `pool`.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("has(self.host) || has(self.path)").message("a rule needs a host, a path or both"))]
#[x_kube(validation = Rule::new("!has(self.rewritePath) || has(self.path)").message("rewritePath replaces the matched path: the rule needs a path"))]
pub struct RoutingRule {
    /// Host name the request's Host header must equal, or `*.example.com` for every host one
    /// label below `example.com`. Compared case-insensitively, without the port.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(
        length(min = 1, max = 253),
        regex(pattern = r"^(\*\.)?[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
    )]
    pub host: Option<String>,
    /// URI path, starting with `/`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 1024), regex(pattern = r"^/[^\s\x22\x5c]*$"))]
    pub path: Option<String>,
    /// `Prefix` (default): the path and everything below it, by whole segments (`/api`
    /// matches `/api` and `/api/v1`, not `/apis`). `Exact`: only this path.
    #[serde(default)]
    pub path_type: PathType,
    /// Name of the pool that receives matching requests.
    pub pool: String,
    /// Rewrite the path before it reaches the pool: the matched `path` is replaced by this
    /// (`Prefix`: `/api` → `/` turns `/api/v1` into `/v1`; `Exact`: the whole path).
    /// Needs `path`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 1024), regex(pattern = r"^/[A-Za-z0-9._~!&'()*+,=:@%/-]*$"))]
    pub rewrite_path: Option<String>,
    /// Replace the Host header before the request reaches the pool.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(
        length(min = 1, max = 253),
        regex(pattern = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*(:[0-9]{1,5})?$")
    )]
    pub rewrite_host: Option<String>,
    /// Headers set on matching requests (replacing any of the same name) before they reach
    /// the pool.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 16))]
    pub request_headers: Vec<HeaderValue>,
    /// Headers set on the responses to matching requests (replacing any of the same name).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 16))]
    pub response_headers: Vec<HeaderValue>,
    /// Session persistence for the requests this rule matches (per host or path), instead of
    /// the VirtualServer's `persistence`. Not with `tls.mode: passthrough`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub persistence: Option<RulePersistence>,
}

/// Session persistence of one rule's requests.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("!has(self.cookieName) || self.method == 'cookie'").message("cookieName goes with method cookie"))]
#[x_kube(validation = Rule::new("!has(self.timeout) || self.method != 'none'").message("method none takes no timeout"))]
pub struct RulePersistence {
    /// `cookie` (the BIG-IP inserts a cookie naming the pool member), `source-address`,
    /// `destination-address`, or `none` (no persistence for these requests).
    pub method: RulePersistenceMethod,
    /// Seconds. cookie: the cookie's lifetime (default: a session cookie); source- and
    /// destination-address: how long an idle record is kept (default 180, BIG-IP's).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 31536000))]
    pub timeout: Option<i32>,
    /// cookie: the cookie's name. Default `BIGipServer_<namespace>_<name>_<pool>`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 128), regex(pattern = r"^[A-Za-z0-9!#$%&'*+.^_`|~-]+$"))]
    pub cookie_name: Option<String>,
}

/// How a rule's requests persist.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, schemars::JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum RulePersistenceMethod {
    Cookie,
    SourceAddress,
    DestinationAddress,
    None,
}

/// An HTTP header and the value to set it to (taken literally).
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, schemars::JsonSchema)]
pub struct HeaderValue {
    /// Header name: letters, digits and `!#$%&'*+-.^_`|~`.
    #[schemars(length(min = 1, max = 128), regex(pattern = r"^[A-Za-z0-9!#$%&'*+.^_`|~-]+$"))]
    pub name: String,
    /// Value, printable characters only; not Tcl (`tcl:` and brackets are refused).
    #[schemars(length(max = 1024), regex(pattern = r"^[^\[\]\x00-\x1f\x7f]*$"))]
    pub value: String,
}

/// A fixed redirect answered by the BIG-IP itself.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("has(self.host) || has(self.path)").message("a redirect needs a host, a path or both"))]
pub struct Redirect {
    /// Host the request's Host header must equal (or `*.example.com`), as in `rules`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(
        length(min = 1, max = 253),
        regex(pattern = r"^(\*\.)?[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
    )]
    pub host: Option<String>,
    /// URI path, starting with `/`, as in `rules`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 1024), regex(pattern = r"^/[^\s\x22\x5c]*$"))]
    pub path: Option<String>,
    #[serde(default)]
    pub path_type: PathType,
    /// Where to send the client: a URL or a path (`https://shop.example.com/`, `/new`).
    #[schemars(length(min = 1, max = 2048), regex(pattern = r"^[^\s\[\]\x22\x5c]+$"))]
    pub location: String,
    /// HTTP status code, 301, 302 (default), 303, 307 or 308.
    #[serde(default = "default_redirect_code")]
    #[x_kube(validation = Rule::new("self in [301, 302, 303, 307, 308]").message("code must be 301, 302, 303, 307 or 308"))]
    pub code: i32,
}

fn default_redirect_code() -> i32 {
    302
}

/// How a rule's path matches.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, Hash, schemars::JsonSchema)]
pub enum PathType {
    #[default]
    Prefix,
    Exact,
}

/// How the virtual server handles TLS.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, Hash, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum TlsMode {
    /// The BIG-IP decrypts and sends plain HTTP to the pods.
    #[default]
    Terminate,
    /// The BIG-IP decrypts, routes, and encrypts again towards the pods.
    Reencrypt,
    /// The BIG-IP forwards the TLS connection untouched; host rules match on the SNI name,
    /// path rules are not possible.
    Passthrough,
}

/// TLS settings of a VirtualServer.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("self.mode == 'passthrough' ? !has(self.secretName) && !has(self.clientSslProfile) : has(self.secretName) != has(self.clientSslProfile)").message("terminate and reencrypt need exactly one of secretName and clientSslProfile; passthrough takes neither"))]
#[x_kube(validation = Rule::new("self.mode == 'reencrypt' || (!has(self.serverSslProfile) && !has(self.backendCaSecretName))").message("serverSslProfile and backendCaSecretName apply to mode reencrypt only"))]
#[x_kube(validation = Rule::new("!has(self.serverSslProfile) || !has(self.backendCaSecretName)").message("use serverSslProfile or backendCaSecretName, not both"))]
#[x_kube(validation = Rule::new("!has(self.ciphers) || !has(self.cipherGroup)").message("use ciphers or cipherGroup, not both"))]
#[x_kube(validation = Rule::new("!(has(self.allowHttp) && self.allowHttp) || !self.httpRedirect").message("allowHttp serves plain HTTP on port 80: set httpRedirect: false"))]
#[x_kube(validation = Rule::new("!has(self.httpPort) || (self.mode != 'passthrough' && (self.httpRedirect || (has(self.allowHttp) && self.allowHttp)))").message("httpPort is the port httpRedirect or allowHttp listens on: set one of them (not with passthrough)"))]
#[x_kube(validation = Rule::new("has(self.secretName) || (!has(self.minVersion) && !has(self.maxVersion) && !has(self.ciphers) && !has(self.cipherGroup) && !has(self.clientCertificates))").message("minVersion, maxVersion, ciphers, cipherGroup and clientCertificates go with secretName (an existing clientSslProfile has its own)"))]
pub struct Tls {
    /// `terminate` (default), `reencrypt` or `passthrough`.
    #[serde(default)]
    pub mode: TlsMode,
    /// A `kubernetes.io/tls` Secret in the VirtualServer's namespace holding the certificate
    /// (`tls.crt`, with its chain) and the unencrypted private key (`tls.key`). Changes to
    /// the Secret are programmed at once.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 253))]
    pub secret_name: Option<String>,
    /// Instead of a Secret: full path of an existing BIG-IP client SSL profile, e.g.
    /// `/Common/clientssl`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 3, max = 255), regex(pattern = r"^/[A-Za-z0-9_.-]+(/[A-Za-z0-9_.-]+)+$"))]
    pub client_ssl_profile: Option<String>,
    /// reencrypt: full path of an existing BIG-IP server SSL profile used towards the pods,
    /// e.g. `/Common/serverssl`. Without it (and without `backendCaSecretName`) the BIG-IP
    /// encrypts without verifying the pods' certificates.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 3, max = 255), regex(pattern = r"^/[A-Za-z0-9_.-]+(/[A-Za-z0-9_.-]+)+$"))]
    pub server_ssl_profile: Option<String>,
    /// reencrypt: a Secret in the namespace whose `ca.crt` holds the CA certificates the
    /// pods' certificates must chain to; the BIG-IP then refuses pods it cannot verify.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 253))]
    pub backend_ca_secret_name: Option<String>,
    /// Redirect plain HTTP on `httpPort` (80) of the virtual address to this HTTPS port.
    /// Default true for terminate and reencrypt; ignored for passthrough.
    #[serde(default = "default_true")]
    pub http_redirect: bool,
    /// Also serve the same hosts and paths over plain HTTP on `httpPort` (80) of the address
    /// (CIS `httpTraffic: allow`); needs `httpRedirect: false`. terminate and reencrypt only.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub allow_http: bool,
    /// The plain HTTP port that `httpRedirect` redirects from or `allowHttp` serves (CIS
    /// `virtualServerHTTPPort`). Default 80; must differ from `port`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 65535))]
    pub http_port: Option<i32>,
    /// Oldest TLS version clients may use (with `secretName`): `1.0`, `1.1`, `1.2`, `1.3`.
    /// Default: the BIG-IP's (1.0).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_version: Option<TlsVersion>,
    /// Newest TLS version clients may use (with `secretName`). Default 1.2 (BIG-IP's); `1.3`
    /// needs `cipherGroup`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_version: Option<TlsVersion>,
    /// OpenSSL-style cipher string for clients (with `secretName`), e.g.
    /// `ECDHE+AES-GCM:!SSLv3`. Not with `cipherGroup`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 1024), regex(pattern = r"^[A-Za-z0-9!+:@_.,=-]+$"))]
    pub ciphers: Option<String>,
    /// An existing BIG-IP cipher group by full path, e.g. `/Common/f5-secure`. Not with
    /// `ciphers`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 3, max = 255), regex(pattern = r"^/[A-Za-z0-9_.-]+(/[A-Za-z0-9_.-]+)+$"))]
    pub cipher_group: Option<String>,
    /// Ask clients for certificates (mutual TLS; with `secretName`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_certificates: Option<ClientCertificates>,
}

/// A TLS protocol version.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, schemars::JsonSchema)]
pub enum TlsVersion {
    #[serde(rename = "1.0")]
    V1_0,
    #[serde(rename = "1.1")]
    V1_1,
    #[serde(rename = "1.2")]
    V1_2,
    #[serde(rename = "1.3")]
    V1_3,
}

/// Client certificate verification (mutual TLS).
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ClientCertificates {
    /// A `kubernetes.io/tls` Secret in the namespace whose `ca.crt` holds the CA certificates
    /// client certificates must chain to.
    #[schemars(length(min = 1, max = 253))]
    pub ca_secret_name: String,
    /// `require` (default): clients without a valid certificate are refused; `request`:
    /// asked for, verified when sent, not required.
    #[serde(default)]
    pub mode: ClientCertificateMode,
}

#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum ClientCertificateMode {
    #[default]
    Require,
    Request,
}

fn is_zero(value: &i32) -> bool {
    *value == 0
}

fn default_true() -> bool {
    true
}

/// Observed state of a VirtualServer, written by the operator.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct VirtualServerStatus {
    /// Conditions: Accepted, ResolvedRefs, Programmed and Ready.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
    /// The BIG-IP partition (AS3 tenant) the virtual server lives in.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub partition: Option<String>,
    /// The AS3 application name, `<namespace>_<name>`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub application: Option<String>,
    /// Number of pool members taking new connections, over all pools (draining members,
    /// whose endpoints are terminating, are not counted).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub members: Option<i32>,
    /// The metadata.generation that this status describes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
}
