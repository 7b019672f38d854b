//! Types shared by the custom resources.

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
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, Hash, schemars::JsonSchema, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum PoolMemberType {
    /// Every Ready node's InternalIP with the Service's nodePort.
    #[default]
    Nodeport,
    /// Ready pod IPs from the Service's EndpointSlices with the target port.
    Cluster,
}

/// Health monitor protocols.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Hash, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum MonitorType {
    Http,
    Https,
    Tcp,
}

impl MonitorType {
    pub fn as3_name(self) -> &'static str {
        match self {
            Self::Http => "http",
            Self::Https => "https",
            Self::Tcp => "tcp",
        }
    }
}

/// A BIG-IP health monitor for the members of a pool.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("self.timeout > self.interval").message("timeout must be greater than interval (F5 recommends 3 x interval + 1)"))]
pub struct HealthMonitor {
    /// Protocol of the monitor: `http`, `https` or `tcp`.
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
