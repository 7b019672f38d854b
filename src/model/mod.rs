//! Pure desired state: VirtualServers plus the Services, EndpointSlices and Nodes they use,
//! turned into validated, defaulted BIG-IP applications grouped by partition. No I/O.

pub mod address_pool;
pub mod application;
pub mod bgp;
pub mod cluster;
pub mod flannel;
pub mod flannel_etcd;
pub mod fleet;
pub mod labels;
pub mod listener_group;
pub mod load_balancer;
pub mod members;
pub mod policy;
pub mod service_view;
pub mod slice;
pub mod tls;
pub mod transport;

use std::fmt;
use std::net::IpAddr;
use std::sync::Arc;

use crate::crd::{LoadBalancingMode, MonitorMatch, MonitorType, Persistence, PoolMemberType, VirtualAddressOptions};

pub use application::{build_application, partition_of};
pub use cluster::{ClusterObjects, ClusterView};
pub use fleet::{build_fleet, AppOutcome, Fleet};
pub use service_view::{ServiceSpecView, ServiceView};
pub use slice::{EndpointSliceView, SliceEndpoint};
pub use transport::build_transport_application;

/// Operator-wide defaults the model applies where an object leaves a field out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModelDefaults {
    /// Partition for objects that name none.
    pub partition: String,
    pub pool_member_type: PoolMemberType,
    /// Nodeport mode: only nodes whose labels match are pool members (`--node-label-selector`).
    pub node_selector: Option<labels::Selector>,
    /// The route domain of addresses written without `%<id>` (`--default-route-domain`): the
    /// default route domain of every partition the operator declares.
    pub default_route_domain: u16,
}

/// Namespace and name of a namespaced Kubernetes object.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ObjectKey {
    pub namespace: String,
    pub name: String,
}

impl ObjectKey {
    /// The key of a namespaced object; objects read without a namespace are in `default`,
    /// as kubectl would create them.
    pub fn of(metadata: &k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta) -> Self {
        Self {
            namespace: metadata.namespace.clone().unwrap_or_else(|| "default".into()),
            name: metadata.name.clone().unwrap_or_default(),
        }
    }
}

impl fmt::Display for ObjectKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.namespace, self.name)
    }
}

/// The kind of object an application was built from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum SourceKind {
    VirtualServer,
    TransportServer,
}

impl SourceKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::VirtualServer => "VirtualServer",
            Self::TransportServer => "TransportServer",
        }
    }
}

/// A VirtualServer or TransportServer: its kind, namespace and name.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SourceId {
    pub kind: SourceKind,
    pub key: ObjectKey,
}

impl fmt::Display for SourceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.kind.as_str(), self.key)
    }
}

/// One virtual server as the BIG-IP should have it: an AS3 Application.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DesiredApplication {
    pub source: ObjectKey,
    pub kind: SourceKind,
    /// AS3 Application name: `<namespace>_<name>` for a VirtualServer,
    /// `<namespace>_ts_<name>` for a TransportServer.
    pub name: String,
    pub partition: String,
    pub virtual_address: IpAddr,
    /// BIG-IP route domain of the virtual address (`%<id>`); None: the partition's default.
    pub route_domain: Option<u16>,
    pub port: u16,
    pub frontend: Frontend,
    pub snat: DesiredSnat,
    pub persistence: Persistence,
    pub irules: Vec<DesiredIRule>,
    /// Client CIDRs allowed to connect, normalised (`10.0.0.0/8`); empty: every client.
    pub source_ranges: Vec<ipnet::IpNet>,
    pub address_options: Option<VirtualAddressOptions>,
    pub pools: Vec<DesiredPool>,
    /// Name of the pool the virtual server sends traffic to when no rule matches, or the full
    /// path of an existing BIG-IP pool (starting with `/`, which no pool name does); empty for
    /// a listener group's virtual server (requests no rule matches are refused).
    pub default_pool: String,
    /// Existing BIG-IP profiles, VLANs and mirroring (`spec.profiles`, `allowVlans`,
    /// `connectionMirroring`).
    pub profiles: DesiredProfiles,
    /// Only the pools are programmed (no `virtualAddress`, `addressPool` or `listenerGroup`):
    /// the virtual server is managed outside Kubernetes. The address and port are then
    /// unspecified and claim nothing.
    pub pools_only: bool,
    /// The listener group this application is part of (a VirtualServer with
    /// `spec.listenerGroup`, or the group's merged application).
    pub group: Option<Arc<listener_group::GroupSettings>>,
}

impl AsRef<DesiredApplication> for DesiredApplication {
    fn as_ref(&self) -> &Self {
        self
    }
}

impl DesiredApplication {
    /// A plain HTTP application (no rules, TLS, iRules or source ranges; SNAT automap, no
    /// persistence) whose traffic goes to its first pool.
    pub fn plain_http(
        source: ObjectKey,
        name: impl Into<String>,
        partition: impl Into<String>,
        virtual_address: IpAddr,
        port: u16,
        pools: Vec<DesiredPool>,
    ) -> Self {
        let default_pool = pools.first().map(|p| p.name.clone()).unwrap_or_default();
        Self {
            source,
            kind: SourceKind::VirtualServer,
            name: name.into(),
            partition: partition.into(),
            virtual_address,
            route_domain: None,
            port,
            frontend: Frontend::Http {
                routes: Vec::new(),
                redirects: Vec::new(),
                tls: None,
                x_forwarded_for: false,
                waf_policy: None,
            },
            snat: DesiredSnat::Automap,
            persistence: Persistence::None,
            irules: Vec::new(),
            source_ranges: Vec::new(),
            address_options: None,
            pools,
            default_pool,
            profiles: DesiredProfiles::default(),
            pools_only: false,
            group: None,
        }
    }

    /// Members that take new connections, over all pools; draining members are not counted,
    /// so an application whose members all drain reports none.
    pub fn member_count(&self) -> usize {
        self.pools.iter().flat_map(|p| &p.members).filter(|m| m.state == MemberState::Active).count()
    }

    pub fn id(&self) -> SourceId {
        SourceId { kind: self.kind, key: self.source.clone() }
    }

    /// The (address, port, protocol) listeners the application occupies on the BIG-IP: its
    /// own, plus port 80 when it redirects HTTP to HTTPS.
    pub fn listeners(&self) -> Vec<Listener> {
        if self.pools_only {
            return Vec::new();
        }
        if let Some(group) = &self.group {
            return group.listeners();
        }
        let protocol = match self.frontend {
            Frontend::Udp => ListenerProtocol::Udp,
            _ => ListenerProtocol::Tcp,
        };
        let route_domain = self.route_domain.unwrap_or(0);
        let mut listeners = vec![Listener { address: self.virtual_address, route_domain, port: self.port, protocol }];
        if let Frontend::Http { tls: Some(tls), .. } = &self.frontend {
            if (tls.http_redirect || tls.serve_http) && self.port != tls.http_port {
                listeners.push(Listener { address: self.virtual_address, route_domain, port: tls.http_port, protocol });
            }
        }
        listeners
    }

    /// What the application claims on the BIG-IP: its listeners, and its virtual address
    /// object ([`ListenerProtocol::VirtualAddress`]), which BIG-IP keeps in one partition only.
    pub fn claims(&self) -> Vec<Listener> {
        let mut claims = self.listeners();
        if self.pools_only {
            return claims;
        }
        claims.push(Listener {
            address: self.virtual_address,
            route_domain: self.route_domain.unwrap_or(0),
            port: 0,
            protocol: ListenerProtocol::VirtualAddress,
        });
        claims
    }

    /// Whether the application also serves its routes over plain HTTP on its HTTP port (a
    /// `Service_HTTP` beside its `Service_HTTPS`).
    pub fn serves_plain_http(&self) -> bool {
        if let Some(group) = &self.group {
            return group.serves_http();
        }
        matches!(&self.frontend, Frontend::Http { tls: Some(tls), .. } if tls.serve_http && self.port != tls.http_port)
    }

    /// The port of plain HTTP next to HTTPS (redirected or served): 80 unless `tls.httpPort`.
    pub fn plain_http_port(&self) -> u16 {
        match &self.frontend {
            Frontend::Http { tls: Some(tls), .. } => tls.http_port,
            _ => 80,
        }
    }

    /// Whether plain HTTP on a port other than 80 is redirected to HTTPS: the application
    /// declares that redirect itself (AS3's `redirect80` listens on port 80 only).
    pub fn redirects_http_itself(&self) -> bool {
        self.group.is_none()
            && matches!(&self.frontend, Frontend::Http { tls: Some(tls), .. }
                if tls.http_redirect && tls.http_port != 80 && self.port != tls.http_port)
    }

    /// Whether this application's claim of `listener` and `other`'s do not conflict: both in
    /// one partition, and the listener is a virtual address, or both are in one listener group.
    pub fn shares_listener_with(&self, other: &DesiredApplication, listener: &Listener) -> bool {
        let same_group = match (&self.group, &other.group) {
            (Some(a), Some(b)) => a.name == b.name,
            _ => false,
        };
        self.partition == other.partition && (listener.shared_within_partition() || same_group)
    }

    /// The host and path routes this application claims in its listener group (none outside
    /// a group): no two objects of a group may serve the same host and path.
    pub fn route_claims(&self) -> Vec<RouteClaim> {
        let (Some(group), Frontend::Http { routes, .. }) = (&self.group, &self.frontend) else { return Vec::new() };
        routes.iter().map(|route| RouteClaim::of(&group.name, route)).collect()
    }
}

/// A host and path in a listener group, as one object claims it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct RouteClaim {
    pub group: String,
    /// `shop.example.com` or `*.example.com`.
    pub host: String,
    /// `/api` (a prefix), `=/api` (exact), or empty (every path).
    pub path: String,
}

impl RouteClaim {
    pub fn of(group: &str, route: &DesiredRoute) -> Self {
        let host = match &route.host {
            Some(HostMatch::Exact(h)) => h.clone(),
            Some(HostMatch::Suffix(s)) => format!("*{s}"),
            None => String::new(),
        };
        let path = match &route.path {
            Some(PathMatch::Exact(p)) => format!("={p}"),
            Some(PathMatch::Prefix(p)) => p.clone(),
            None => String::new(),
        };
        Self { group: group.to_string(), host, path }
    }
}

impl fmt::Display for RouteClaim {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let path = match self.path.strip_prefix('=') {
            Some(exact) => format!("path {exact} (exact)"),
            None if self.path.is_empty() => "every path".to_string(),
            None => format!("path {} and below", self.path),
        };
        write!(f, "host {} {path} in BigIpListenerGroup {}", self.host, self.group)
    }
}

/// A destination on the BIG-IP: no two virtual servers may share one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Listener {
    pub address: IpAddr,
    /// BIG-IP route domain of the address (0: the default one).
    pub route_domain: u16,
    pub port: u16,
    pub protocol: ListenerProtocol,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ListenerProtocol {
    Tcp,
    Udp,
    /// Not a destination but the virtual address object of an address (any port): BIG-IP
    /// refuses the same IP address in a second partition (`0107176c:3: Invalid Virtual
    /// Address, the IP address … already exists`), so objects in other partitions conflict
    /// on it while objects in the same partition share it.
    VirtualAddress,
}

impl Listener {
    /// Whether claims of this by objects in the same partition do not conflict.
    pub fn shared_within_partition(&self) -> bool {
        self.protocol == ListenerProtocol::VirtualAddress
    }
}

impl fmt::Display for Listener {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let protocol = match self.protocol {
            ListenerProtocol::Tcp => "tcp",
            ListenerProtocol::Udp => "udp",
            ListenerProtocol::VirtualAddress => {
                return write!(f, "the address {} (BIG-IP keeps an address in one partition)", self.address);
            }
        };
        let domain = if self.route_domain == 0 { String::new() } else { format!("%{}", self.route_domain) };
        match self.address {
            IpAddr::V4(a) => write!(f, "{a}{domain}:{} ({protocol})", self.port),
            IpAddr::V6(a) => write!(f, "[{a}{domain}]:{} ({protocol})", self.port),
        }
    }
}

/// What the virtual server speaks towards clients.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Frontend {
    /// HTTP, or HTTPS when `tls` is set; requests routed by host and path.
    Http {
        routes: Vec<DesiredRoute>,
        /// Fixed redirects, evaluated before the routes (most specific first).
        redirects: Vec<DesiredRedirect>,
        tls: Option<TlsTermination>,
        x_forwarded_for: bool,
        waf_policy: Option<String>,
    },
    /// TLS forwarded untouched; connections routed by SNI name.
    TlsPassthrough {
        routes: Vec<DesiredRoute>,
    },
    /// TCP; with `tls`, decrypted on the BIG-IP (TLS offload).
    Tcp {
        tls: Option<TlsTermination>,
    },
    Udp,
}

/// A routing rule, in the order it is evaluated (most specific first).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DesiredRoute {
    pub host: Option<HostMatch>,
    pub path: Option<PathMatch>,
    pub pool: String,
    /// What is changed in matching requests and their responses.
    pub rewrite: RouteRewrite,
    /// Session persistence of matching requests, instead of the virtual server's.
    pub persistence: Option<RoutePersistence>,
}

/// A route's session persistence, resolved to what the BIG-IP's policy action takes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RoutePersistence {
    /// No persistence for these requests.
    Disabled,
    /// Insert a cookie; `expiry` is `[Nd]HH:MM:SS`, `00:00:00` for a session cookie.
    Cookie {
        name: String,
        expiry: String,
    },
    /// Persist on the client's (or the destination's) address, all of it (a /32 or /128 mask).
    SourceAddress {
        netmask: String,
        timeout: u32,
    },
    DestinationAddress {
        netmask: String,
        timeout: u32,
    },
}

/// Changes to a route's requests and responses (all empty: none).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RouteRewrite {
    /// Replaces the matched path (the prefix of a prefix route).
    pub path: Option<String>,
    /// Replaces the Host header.
    pub host: Option<String>,
    /// (name, value) set on requests, then on responses.
    pub request_headers: Vec<(String, String)>,
    pub response_headers: Vec<(String, String)>,
}

impl RouteRewrite {
    pub fn is_empty(&self) -> bool {
        *self == Self::default()
    }
}

/// Existing BIG-IP profiles by full path, and the virtual server options that go with them.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct DesiredProfiles {
    pub http: Option<String>,
    pub http2: Option<String>,
    /// TCP: both sides, or client and server side.
    pub tcp: Option<TcpProfiles>,
    pub udp: Option<String>,
    /// FastL4 (a TransportServer as `Service_L4`).
    pub fast_l4: Option<String>,
    pub one_connect: Option<String>,
    pub http_compression: Option<String>,
    pub web_socket: Option<String>,
    pub analytics: Option<String>,
    pub request_logging: Option<String>,
    pub persistence: Option<String>,
    pub allow_vlans: Vec<String>,
    pub mirroring: bool,
    /// Existing LTM policies run after the virtual server's own routing policy.
    pub ltm_policies: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TcpProfiles {
    Both(String),
    /// (client side, server side); None keeps BIG-IP's `normal` profile on that side.
    Sides(Option<String>, Option<String>),
}

/// A fixed redirect answered by the BIG-IP.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DesiredRedirect {
    pub host: Option<HostMatch>,
    pub path: Option<PathMatch>,
    pub location: String,
    pub code: u16,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HostMatch {
    /// The host, lower-case.
    Exact(String),
    /// `*.example.com`: hosts ending in `.example.com` (the suffix, with its dot).
    Suffix(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PathMatch {
    Exact(String),
    /// The path without a trailing `/`; matches itself and everything below it.
    Prefix(String),
}

/// TLS terminated on the BIG-IP.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsTermination {
    pub server: ServerTls,
    /// Re-encryption towards the pods (None: plain HTTP to the pods).
    pub backend: Option<BackendTls>,
    /// Redirect HTTP on `http_port` to the HTTPS port.
    pub http_redirect: bool,
    /// Serve the same routes over plain HTTP on `http_port` too.
    pub serve_http: bool,
    /// The plain HTTP port of `http_redirect` and `serve_http` (80 unless set).
    pub http_port: u16,
    /// Versions, ciphers and client certificates (a certificate from a Secret only).
    pub options: Box<TlsOptions>,
}

/// TLS settings towards clients beyond the certificate (all default: the BIG-IP's).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct TlsOptions {
    /// Whether TLS 1.0, 1.1, 1.2 and 1.3 are allowed; None: the BIG-IP's defaults.
    pub versions: Option<[bool; 4]>,
    pub ciphers: Option<Ciphers>,
    pub client_certificates: Option<ClientAuthentication>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ciphers {
    /// An OpenSSL-style cipher string.
    String(String),
    /// An existing BIG-IP cipher group.
    Group(String),
}

/// Client certificates verified against these CA certificates (PEM).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientAuthentication {
    pub required: bool,
    pub ca_bundle: String,
}

/// Where the certificate clients see comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ServerTls {
    /// From a Secret: the leaf certificate, the rest of the chain (may be empty), and the key
    /// (all PEM).
    Certificate { certificate: String, chain: String, private_key: String },
    /// An existing BIG-IP client SSL profile.
    Profile(String),
    /// Several certificates chosen by the client's server name (a listener group): the
    /// first is the default one, for clients whose server name matches no other.
    Sni(Vec<SniCertificate>),
}

/// One certificate of a [`ServerTls::Sni`] list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SniCertificate {
    /// The host it serves (`shop.example.com`, `*.example.com`); None for the default.
    pub server_name: Option<String>,
    pub certificate: String,
    pub chain: String,
    pub private_key: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BackendTls {
    /// Encrypt without verifying the pods' certificates.
    Unverified,
    /// An existing BIG-IP server SSL profile.
    Profile(String),
    /// Verify the pods' certificates against these CA certificates (PEM).
    VerifiedBy { ca_bundle: String },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DesiredSnat {
    Automap,
    None,
    /// An existing BIG-IP SNAT pool.
    Pool(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DesiredIRule {
    /// An existing iRule on the BIG-IP.
    Existing(String),
    /// An iRule declared with the application.
    Inline { name: String, text: String },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DesiredPool {
    pub name: String,
    pub load_balancing_mode: LoadBalancingMode,
    pub monitors: Vec<DesiredMonitor>,
    pub monitor_match: MonitorMatch,
    pub minimum_members_active: Option<u32>,
    pub connection_limit: Option<u32>,
    pub slow_ramp_time: Option<u32>,
    /// Sorted, without duplicates.
    pub members: Vec<PoolMember>,
    /// Existing monitors, service-down handling.
    pub options: PoolOptions,
}

/// Pool settings beyond members and monitors (all default: the BIG-IP's).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PoolOptions {
    /// Existing BIG-IP monitors by full path.
    pub bigip_monitors: Vec<String>,
    /// AS3 `serviceDownAction` (`reset`, `drop`, `reselect`, `none`).
    pub service_down_action: Option<&'static str>,
    pub reselect_tries: Option<u32>,
}

impl DesiredPool {
    /// A round-robin pool without monitors or limits.
    pub fn plain(name: impl Into<String>, members: Vec<PoolMember>) -> Self {
        Self {
            name: name.into(),
            load_balancing_mode: LoadBalancingMode::RoundRobin,
            monitors: Vec::new(),
            monitor_match: MonitorMatch::All,
            minimum_members_active: None,
            connection_limit: None,
            slow_ramp_time: None,
            members,
            options: PoolOptions::default(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DesiredMonitor {
    pub monitor_type: MonitorType,
    pub send: Option<String>,
    pub receive: Option<String>,
    pub interval: u32,
    pub timeout: u32,
    /// The port probed instead of the member's.
    pub target_port: Option<u16>,
    pub time_until_up: Option<u32>,
    /// https: an existing server SSL profile to probe with.
    pub ssl_profile: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PoolMember {
    pub address: IpAddr,
    pub port: u16,
    pub state: MemberState,
    /// Its weight (BIG-IP ratio, 1-100) in a pool of weighted Services; 0: not weighted.
    pub ratio: u8,
}

/// Whether a pool member takes new connections.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub enum MemberState {
    /// Ready: takes new connections.
    #[default]
    Active,
    /// Serving but terminating: existing (and persisted) connections finish, new ones go to
    /// other members. Sorts after `Active`.
    Draining,
}

/// Why a VirtualServer cannot be accepted at all (its spec is wrong).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InvalidSpec {
    #[error(
        "spec.virtualAddress {value:?} is not an IPv4 or IPv6 address (with an optional route domain, %<0-65535>)"
    )]
    VirtualAddress { value: String },
    #[error("spec.port {value} is outside 1-65535")]
    Port { value: i32 },
    #[error("spec.partition {value:?} is invalid: {reason}")]
    Partition { value: String, reason: &'static str },
    #[error("spec.pools must list at least one pool")]
    NoPools,
    #[error("spec.pools[{index}].name {value:?} is invalid: {reason}")]
    PoolName { index: usize, value: String, reason: &'static str },
    #[error("spec.defaultPool {value:?} names no pool in spec.pools")]
    DefaultPool { value: String },
    #[error("spec.pools[{pool}].monitors[{index}]: {reason}")]
    Monitor { pool: usize, index: usize, reason: String },
    #[error("the AS3 application name {value:?} (<namespace>_<name>) is invalid: {reason}")]
    ApplicationName { value: String, reason: &'static str },
    #[error("spec.rules[{index}]: {reason}")]
    Rule { index: usize, reason: String },
    #[error("spec.tls: {reason}")]
    Tls { reason: String },
    #[error("spec.iRules[{index}]: {reason}")]
    IRule { index: usize, reason: String },
    #[error("spec.allowSourceRanges[{index}] {value:?} is not a CIDR such as 10.0.0.0/8")]
    SourceRange { index: usize, value: String },
    #[error("spec.{field}: {reason}")]
    Field { field: &'static str, reason: String },
    /// `spec.addressPool` is set and no address is allocated yet; `problem` is
    /// `<Reason>: <message>` from the allocator when it failed.
    /// `spec.listenerGroup` cannot be joined; `reason` is the condition reason.
    #[error("spec.listenerGroup {group}: {message}")]
    ListenerGroup { group: String, reason: &'static str, message: String },
    #[error("spec.addressPool {pool}: {}", problem.as_deref().map(|p| p.split_once(": ").map_or(p, |(_, m)| m)).unwrap_or("waiting for an address to be allocated"))]
    AddressNotAllocated { pool: String, problem: Option<String> },
}

impl InvalidSpec {
    /// The reason of `Accepted=False`.
    pub fn reason(&self) -> &str {
        match self {
            Self::AddressNotAllocated { problem: Some(problem), .. } => {
                problem.split_once(": ").map_or("AddressPending", |(reason, _)| reason)
            }
            Self::AddressNotAllocated { problem: None, .. } => "AddressPending",
            Self::ListenerGroup { reason, .. } => reason,
            _ => "Invalid",
        }
    }
}

/// The address of a VirtualServer or TransportServer: `spec.virtualAddress`, or the one
/// allocated from `spec.addressPool` (the annotation the controller writes once the pool's
/// record holds it).
pub fn object_address(
    virtual_address: &str,
    address_pool: Option<&str>,
    metadata: &k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta,
) -> Result<String, InvalidSpec> {
    if !virtual_address.is_empty() {
        return Ok(virtual_address.to_string());
    }
    let Some(pool) = address_pool else { return Err(InvalidSpec::VirtualAddress { value: String::new() }) };
    let annotations = metadata.annotations.as_ref();
    if let Some(address) = annotations.and_then(|a| a.get(load_balancer::ALLOCATED_ANNOTATION)) {
        return Ok(address.clone());
    }
    let problem = annotations.and_then(|a| a.get(load_balancer::ADDRESS_PROBLEM_ANNOTATION)).cloned();
    Err(InvalidSpec::AddressNotAllocated { pool: pool.to_string(), problem })
}

/// A reference the model could not resolve. The virtual server is still programmed (the pool
/// stays empty) and ResolvedRefs is False with this reason.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UnresolvedRef {
    #[error("pool {pool:?}: Service {service:?} not found")]
    ServiceNotFound { pool: String, service: String },
    #[error("pool {pool:?}: Service {service:?} has no port {port}")]
    ServicePortNotFound { pool: String, service: String, port: String },
    #[error("Service {service:?} port {port} has no nodePort (type {service_type}); use type NodePort or LoadBalancer, or poolMemberType cluster")]
    NoNodePort { service: String, port: i32, service_type: String },
    #[error("{field}: Secret {secret:?} not found (only Secrets of type kubernetes.io/tls are read)")]
    SecretNotFound { field: &'static str, secret: String },
    #[error("{field}: Secret {secret:?} is unusable: {reason}")]
    InvalidSecret { field: &'static str, secret: String, reason: String },
    #[error(
        "spec.policy: BigIpPolicy {policy:?} not found in the namespace; nothing is programmed without its settings"
    )]
    PolicyNotFound { policy: String },
    #[error("pool {pool:?}: Service {service:?} is in another namespace, and no ReferenceGrant there allows {kind}s from namespace {namespace} to refer to it")]
    RefNotPermitted { pool: String, service: String, kind: &'static str, namespace: String },
}

impl UnresolvedRef {
    /// The condition reason for this failure.
    pub fn reason(&self) -> &'static str {
        match self {
            Self::ServiceNotFound { .. } => "ServiceNotFound",
            Self::ServicePortNotFound { .. } => "ServicePortNotFound",
            Self::NoNodePort { .. } => "ServiceHasNoNodePort",
            Self::SecretNotFound { .. } => "SecretNotFound",
            Self::InvalidSecret { .. } => "InvalidSecret",
            Self::RefNotPermitted { .. } => "RefNotPermitted",
            Self::PolicyNotFound { .. } => "PolicyNotFound",
        }
    }

    /// Whether the application cannot be programmed at all without this reference (a TLS
    /// certificate), rather than with an empty pool.
    pub fn blocks_programming(&self) -> bool {
        matches!(self, Self::SecretNotFound { .. } | Self::InvalidSecret { .. } | Self::PolicyNotFound { .. })
    }
}

#[cfg(test)]
mod feature_tests;
#[cfg(test)]
mod listener_group_tests;
#[cfg(test)]
mod tests;
