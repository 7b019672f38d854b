//! Types shared by the custom resources.

use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use kube::KubeSchema;
use serde::{Deserialize, Serialize};

/// BIG-IP pool load-balancing modes (every mode AS3 accepts).
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, Hash, schemars::JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum LoadBalancingMode {
    DynamicRatioMember,
    DynamicRatioNode,
    FastestAppResponse,
    FastestNode,
    LeastConnectionsMember,
    LeastConnectionsNode,
    LeastSessions,
    ObservedMember,
    ObservedNode,
    PredictiveMember,
    PredictiveNode,
    RatioLeastConnectionsMember,
    RatioLeastConnectionsNode,
    RatioMember,
    RatioNode,
    RatioSession,
    #[default]
    RoundRobin,
    WeightedLeastConnectionsMember,
    WeightedLeastConnectionsNode,
}

impl LoadBalancingMode {
    /// The AS3 `loadBalancingMode` string.
    pub fn as3_name(self) -> &'static str {
        match self {
            Self::DynamicRatioMember => "dynamic-ratio-member",
            Self::DynamicRatioNode => "dynamic-ratio-node",
            Self::FastestAppResponse => "fastest-app-response",
            Self::FastestNode => "fastest-node",
            Self::LeastConnectionsMember => "least-connections-member",
            Self::LeastConnectionsNode => "least-connections-node",
            Self::LeastSessions => "least-sessions",
            Self::ObservedMember => "observed-member",
            Self::ObservedNode => "observed-node",
            Self::PredictiveMember => "predictive-member",
            Self::PredictiveNode => "predictive-node",
            Self::RatioLeastConnectionsMember => "ratio-least-connections-member",
            Self::RatioLeastConnectionsNode => "ratio-least-connections-node",
            Self::RatioMember => "ratio-member",
            Self::RatioNode => "ratio-node",
            Self::RatioSession => "ratio-session",
            Self::RoundRobin => "round-robin",
            Self::WeightedLeastConnectionsMember => "weighted-least-connections-member",
            Self::WeightedLeastConnectionsNode => "weighted-least-connections-node",
        }
    }
}

/// Source address translation for traffic sent to pool members.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, Hash, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum SnatMode {
    /// The BIG-IP rewrites the source address to one of its self IPs.
    #[default]
    Automap,
    /// No source translation.
    None,
}

/// Where pool members come from.
#[derive(
    Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, Hash, schemars::JsonSchema, clap::ValueEnum,
)]
#[serde(rename_all = "lowercase")]
pub enum PoolMemberType {
    /// Every Ready node's InternalIP with the Service's nodePort.
    #[default]
    Nodeport,
    /// Ready pod IPs from the Service's EndpointSlices with the target port.
    Cluster,
}

/// A pool: the endpoints of one Service port, with its load-balancing mode and health monitors.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
pub struct Pool {
    /// Name of the pool, unique within the VirtualServer: a lower-case letter, then lower-case
    /// letters, digits and `-`.
    #[schemars(length(min = 1, max = 63), regex(pattern = r"^[a-z]([-a-z0-9]*[a-z0-9])?$"))]
    pub name: String,

    /// Name of the Service whose endpoints form the pool.
    #[schemars(length(min = 1, max = 63))]
    pub service: String,

    /// Namespace of the Service; default: the object's own. A Service in another namespace is
    /// used only when a Gateway API ReferenceGrant in that namespace allows this kind from
    /// this namespace to Services (otherwise `ResolvedRefs=False`, reason `RefNotPermitted`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 63), regex(pattern = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"))]
    pub namespace: Option<String>,

    /// The Service port: its number (`port`, not `targetPort`) or its name.
    pub service_port: IntOrString,

    /// BIG-IP load-balancing mode. Defaults to `round-robin`.
    #[serde(default)]
    pub load_balancing_mode: LoadBalancingMode,

    /// Health monitors of the members.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 8))]
    pub monitors: Vec<HealthMonitor>,

    /// `all` (default): a member is up only when every monitor says so; `any`: when at least
    /// one does.
    #[serde(default)]
    pub monitor_match: MonitorMatch,

    /// The pool is down when fewer members than this are up (AS3 `minimumMembersActive`).
    /// Default 1.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0, max = 65535))]
    pub minimum_members_active: Option<i32>,

    /// Most concurrent connections per member; 0 or unset means no limit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0, max = 65535))]
    pub connection_limit: Option<i32>,

    /// Seconds over which a member that comes up is ramped to its full share of new
    /// connections (AS3 `slowRampTime`). Default 10.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0, max = 900))]
    pub slow_ramp_time: Option<i32>,

    /// With `alternateBackends`: the share of new connections for `service`, relative to the
    /// alternate backends' weights (0-100; default 100). 0 sends it none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0, max = 100))]
    pub weight: Option<i32>,

    /// More Services in the pool with their weights (A/B, canary): their endpoints join the
    /// pool, each Service's members weighted so that the Services get their shares of new
    /// connections (BIG-IP `ratio-member` load balancing). Same namespace as `service`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 8))]
    #[x_kube(validation = Rule::new("self.all(b, self.exists_one(c, c.service == b.service))").message("each alternate backend names a different Service"))]
    pub alternate_backends: Vec<AlternateBackend>,

    /// Existing BIG-IP monitors by full path (`/Common/http`), besides `monitors`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 8))]
    #[schemars(inner(length(min = 3, max = 255), regex(pattern = r"^/[A-Za-z0-9_.-]+(/[A-Za-z0-9_.-]+)+$")))]
    pub bigip_monitors: Vec<String>,

    /// What the BIG-IP does with a connection whose member went down: `none` (default),
    /// `reset`, `drop` or `reselect` (another member, up to `reselectTries` times).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_down_action: Option<ServiceDownAction>,

    /// With `serviceDownAction: reselect`: how many other members to try, 0-65535.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0, max = 65535))]
    pub reselect_tries: Option<i32>,

    /// nodeport mode: only nodes whose labels match this selector (`zone=a,tier!=spot`) are
    /// members of this pool, besides the operator's `--node-label-selector`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 1024))]
    pub node_label_selector: Option<String>,

    /// Members outside Kubernetes (a VM, a legacy server), next to the Service's endpoints.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 64))]
    pub static_members: Vec<StaticMember>,
}

/// What the BIG-IP does with connections to a member that went down.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum ServiceDownAction {
    None,
    Reset,
    Drop,
    Reselect,
}

/// A pool member outside Kubernetes.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct StaticMember {
    #[x_kube(validation = Rule::new("isIP(self)").message("address must be an IPv4 or IPv6 address"))]
    #[schemars(length(max = 45))]
    pub address: String,
    #[schemars(range(min = 1, max = 65535))]
    pub port: i32,
}

/// A Service sharing a pool with a weight.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct AlternateBackend {
    #[schemars(length(min = 1, max = 63))]
    pub service: String,
    /// Its port: number (`port`) or name.
    pub service_port: IntOrString,
    /// Its share of new connections, relative to the pool's `weight` (0-100).
    #[schemars(range(min = 0, max = 100))]
    pub weight: i32,
}

/// Health monitor protocols.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Hash, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum MonitorType {
    Http,
    Https,
    Tcp,
    Udp,
    /// ICMP echo to the member's address; `send` and `receive` do not apply.
    Icmp,
}

impl MonitorType {
    pub fn as3_name(self) -> &'static str {
        match self {
            Self::Http => "http",
            Self::Https => "https",
            Self::Tcp => "tcp",
            Self::Udp => "udp",
            Self::Icmp => "icmp",
        }
    }
}

/// How the monitors of a pool combine.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, Hash, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum MonitorMatch {
    /// A member is up only when every monitor says so.
    #[default]
    All,
    /// A member is up when at least one monitor says so.
    Any,
}

/// Session persistence: which client goes back to which member.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, Hash, schemars::JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum Persistence {
    /// No persistence: every connection is balanced afresh.
    #[default]
    None,
    /// HTTP cookie insert (VirtualServer only).
    Cookie,
    /// By client source address.
    SourceAddress,
    /// By destination address (TransportServer only).
    DestinationAddress,
}

impl Persistence {
    /// The AS3 persistence method name; `None` for no persistence.
    pub fn as3_name(self) -> Option<&'static str> {
        match self {
            Self::None => None,
            Self::Cookie => Some("cookie"),
            Self::SourceAddress => Some("source-address"),
            Self::DestinationAddress => Some("destination-address"),
        }
    }
}

/// An iRule attached to the virtual server: an existing one on the BIG-IP (`bigip`) or one
/// declared here (`name` and `text`).
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("has(self.bigip) != (has(self.name) && has(self.text))").message("an iRule is either `bigip` (an existing iRule) or `name` and `text` (declared here)"))]
#[x_kube(validation = Rule::new("has(self.name) == has(self.text)").message("`name` and `text` go together"))]
pub struct IRule {
    /// Full path of an existing iRule on the BIG-IP, e.g. `/Common/my_irule`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 3, max = 255), regex(pattern = r"^/[A-Za-z0-9_.-]+(/[A-Za-z0-9_.-]+)+$"))]
    pub bigip: Option<String>,
    /// Name of an iRule declared with this virtual server: a lower-case letter, then lower-case
    /// letters, digits and `-`; unique within the object.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 63), regex(pattern = r"^[a-z]([-a-z0-9]*[a-z0-9])?$"))]
    pub name: Option<String>,
    /// TCL text of the iRule, e.g. `when HTTP_REQUEST { HTTP::header insert X-Via bigip }`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 65536))]
    pub text: Option<String>,
}

/// Whether the BIG-IP answers ICMP echo on the virtual address.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Hash, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum IcmpEcho {
    Enable,
    Disable,
    /// Only while a virtual server on the address is available.
    Selective,
}

/// When the BIG-IP advertises a route to the virtual address (dynamic routing).
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Hash, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum RouteAdvertisement {
    Disable,
    Enable,
    Selective,
    Always,
    Any,
    All,
}

/// Existing BIG-IP profiles the virtual server uses, by full path (`/Common/name`). A path
/// the BIG-IP does not have leaves the object out with `ResolvedRefs=False`, reason
/// `BigIpObjectNotFound`, naming the field. Each replaces what the operator would use.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("!has(self.tcp) || (!has(self.tcpClient) && !has(self.tcpServer))").message("use tcp for both sides, or tcpClient/tcpServer, not both"))]
pub struct Profiles {
    /// HTTP profile (VirtualServer), e.g. `/Common/http-custom`. Not with `xForwardedFor`
    /// (that is an HTTP profile setting: set it in yours).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 3, max = 255), regex(pattern = r"^/[A-Za-z0-9_.-]+(/[A-Za-z0-9_.-]+)+$"))]
    pub http: Option<String>,
    /// HTTP/2 profile (VirtualServer terminating TLS; also for gRPC).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 3, max = 255), regex(pattern = r"^/[A-Za-z0-9_.-]+(/[A-Za-z0-9_.-]+)+$"))]
    pub http2: Option<String>,
    /// TCP profile for both the client and the server side.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 3, max = 255), regex(pattern = r"^/[A-Za-z0-9_.-]+(/[A-Za-z0-9_.-]+)+$"))]
    pub tcp: Option<String>,
    /// TCP profile towards clients (with `tcpServer`; the other side keeps BIG-IP's `normal`
    /// profile when only one is set).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 3, max = 255), regex(pattern = r"^/[A-Za-z0-9_.-]+(/[A-Za-z0-9_.-]+)+$"))]
    pub tcp_client: Option<String>,
    /// TCP profile towards the pool members.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 3, max = 255), regex(pattern = r"^/[A-Za-z0-9_.-]+(/[A-Za-z0-9_.-]+)+$"))]
    pub tcp_server: Option<String>,
    /// FastL4 profile (TransportServer): packet-level forwarding (a `Service_L4`) instead of
    /// a full TCP/UDP proxy; not with `tcp`/`tcpClient`/`tcpServer`/`udp`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 3, max = 255), regex(pattern = r"^/[A-Za-z0-9_.-]+(/[A-Za-z0-9_.-]+)+$"))]
    pub fast_l4: Option<String>,
    /// UDP profile (TransportServer with `protocol: udp`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 3, max = 255), regex(pattern = r"^/[A-Za-z0-9_.-]+(/[A-Za-z0-9_.-]+)+$"))]
    pub udp: Option<String>,
    /// OneConnect (connection reuse towards the members; VirtualServer).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 3, max = 255), regex(pattern = r"^/[A-Za-z0-9_.-]+(/[A-Za-z0-9_.-]+)+$"))]
    pub one_connect: Option<String>,
    /// HTTP compression profile (VirtualServer).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 3, max = 255), regex(pattern = r"^/[A-Za-z0-9_.-]+(/[A-Za-z0-9_.-]+)+$"))]
    pub http_compression: Option<String>,
    /// WebSocket profile (VirtualServer).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 3, max = 255), regex(pattern = r"^/[A-Za-z0-9_.-]+(/[A-Za-z0-9_.-]+)+$"))]
    pub web_socket: Option<String>,
    /// Analytics (AVR) profile (VirtualServer).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 3, max = 255), regex(pattern = r"^/[A-Za-z0-9_.-]+(/[A-Za-z0-9_.-]+)+$"))]
    pub analytics: Option<String>,
    /// Request logging profile (VirtualServer).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 3, max = 255), regex(pattern = r"^/[A-Za-z0-9_.-]+(/[A-Za-z0-9_.-]+)+$"))]
    pub request_logging: Option<String>,
    /// Persistence profile, instead of `persistence` (which must then be unset or `none`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 3, max = 255), regex(pattern = r"^/[A-Za-z0-9_.-]+(/[A-Za-z0-9_.-]+)+$"))]
    pub persistence: Option<String>,
}

/// Options of the BIG-IP virtual address object. Unset fields keep the BIG-IP's defaults
/// (ARP on, ICMP echo on, no route advertisement).
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct VirtualAddressOptions {
    /// Whether the BIG-IP answers ARP for the address.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub arp: Option<bool>,
    /// `enable`, `disable` or `selective`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub icmp_echo: Option<IcmpEcho>,
    /// `disable`, `enable`, `selective`, `always`, `any` or `all`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub route_advertisement: Option<RouteAdvertisement>,
}

impl IcmpEcho {
    pub fn as3_name(self) -> &'static str {
        match self {
            Self::Enable => "enable",
            Self::Disable => "disable",
            Self::Selective => "selective",
        }
    }
}

impl RouteAdvertisement {
    pub fn as3_name(self) -> &'static str {
        match self {
            Self::Disable => "disable",
            Self::Enable => "enable",
            Self::Selective => "selective",
            Self::Always => "always",
            Self::Any => "any",
            Self::All => "all",
        }
    }
}

/// A BIG-IP health monitor for the members of a pool.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("self.timeout > self.interval").message("timeout must be greater than interval (F5 recommends 3 x interval + 1)"))]
#[x_kube(validation = Rule::new("self.type != 'icmp' || (!has(self.send) && !has(self.receive))").message("icmp monitors take no send or receive"))]
#[x_kube(validation = Rule::new("self.type != 'icmp' || !has(self.targetPort)").message("icmp monitors probe no port"))]
#[x_kube(validation = Rule::new("self.type == 'https' || !has(self.sslProfile)").message("sslProfile is for https monitors"))]
pub struct HealthMonitor {
    /// Protocol of the monitor: `http`, `https`, `tcp`, `udp` or `icmp`.
    #[serde(rename = "type")]
    pub monitor_type: MonitorType,
    /// String sent to the member, e.g. `GET /healthz HTTP/1.1\r\nHost: web\r\n\r\n`. For
    /// http/https the default is `GET / HTTP/1.0\r\n\r\n`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 4096))]
    pub send: Option<String>,
    /// Regular expression the response must match for the member to be up, e.g. `200 OK`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 4096))]
    pub receive: Option<String>,
    /// Seconds between probes, 1-3600 (AS3's limit). Default 5.
    #[serde(default = "default_monitor_interval")]
    #[schemars(range(min = 1, max = 3600))]
    pub interval: i32,
    /// Seconds without a good answer before the member is marked down, 2-900 (AS3's limit).
    /// Default 16.
    #[serde(default = "default_monitor_timeout")]
    #[schemars(range(min = 2, max = 900))]
    pub timeout: i32,
    /// Probe this port instead of the member's (not icmp), e.g. a separate health port.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 65535))]
    pub target_port: Option<i32>,
    /// Seconds a member must answer well before it takes traffic again, 0-1800.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0, max = 1800))]
    pub time_until_up: Option<i32>,
    /// https monitors: an existing BIG-IP server SSL profile to probe with (full path, e.g.
    /// `/Common/serverssl`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 3, max = 255), regex(pattern = r"^/[A-Za-z0-9_.-]+(/[A-Za-z0-9_.-]+)+$"))]
    pub ssl_profile: Option<String>,
}

fn default_monitor_interval() -> i32 {
    5
}

fn default_monitor_timeout() -> i32 {
    16
}

/// A status condition, shaped like `metav1.Condition`.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Condition {
    /// Accepted, ResolvedRefs, Programmed or Ready.
    #[serde(rename = "type")]
    pub type_: String,
    /// `True`, `False` or `Unknown`.
    pub status: String,
    /// CamelCase reason for the last transition.
    pub reason: String,
    /// Human-readable details: what is wrong and what to fix.
    pub message: String,
    /// The metadata.generation the condition was computed from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// When the status last changed (RFC 3339).
    pub last_transition_time: String,
}
