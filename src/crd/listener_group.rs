//! The `BigIpListenerGroup` custom resource: one BIG-IP virtual address and port shared by the
//! VirtualServers of several teams (host and path rules merged, one certificate per host).

use kube::{CustomResource, KubeSchema};
use serde::{Deserialize, Serialize};

use super::common::Condition;
use super::tunnel::SecretReference;

/// A shared listener. Cluster-scoped: the cluster administrator owns the address and decides
/// which namespaces may attach VirtualServers to it (`spec.listenerGroup`), so no namespace can
/// take over another team's VIP.
#[allow(clippy::duplicated_attributes)]
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[kube(
    group = "bigip.operator.dev",
    version = "v1alpha1",
    kind = "BigIpListenerGroup",
    status = "BigIpListenerGroupStatus",
    shortname = "blg",
    category = "bigip",
    doc = "A BigIpListenerGroup: one virtual address and port shared by VirtualServers of several namespaces.",
    printcolumn(name = "Address", type_ = "string", json_path = ".spec.virtualAddress"),
    printcolumn(name = "Port", type_ = "integer", json_path = ".spec.port"),
    printcolumn(name = "Attached", type_ = "integer", json_path = ".status.attached"),
    printcolumn(
        name = "Programmed",
        type_ = "string",
        json_path = ".status.conditions[?(@.type==\"Programmed\")].status"
    ),
    printcolumn(name = "Age", type_ = "date", json_path = ".metadata.creationTimestamp")
)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("has(self.tls) || !has(self.httpTraffic) || self.httpTraffic == 'none'").message("httpTraffic applies to TLS groups; a group without tls is plain HTTP on its port"))]
#[x_kube(validation = Rule::new("!has(self.tls) || self.port != 80 || !has(self.httpTraffic) || self.httpTraffic == 'none'").message("a TLS group on port 80 cannot also take plain HTTP on port 80"))]
pub struct BigIpListenerGroupSpec {
    /// IPv4 or IPv6 address of the shared virtual server.
    #[x_kube(validation = Rule::new("isIP(self)").message("virtualAddress must be an IPv4 or IPv6 address"))]
    #[schemars(length(max = 45))]
    pub virtual_address: String,

    /// TCP port; VirtualServers of the group name the same `port`.
    #[schemars(range(min = 1, max = 65535))]
    pub port: i32,

    /// BIG-IP partition (AS3 tenant) of the shared virtual server. Defaults to the operator's
    /// `--partition`. VirtualServers of the group must be in the same partition (they name
    /// none, or this one).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[x_kube(validation = Rule::new("self != 'Common'").message("the Common partition is reserved; choose another partition"))]
    #[schemars(length(min = 1, max = 64), regex(pattern = r"^[A-Za-z][0-9A-Za-z_.-]*$"))]
    pub partition: Option<String>,

    /// Namespaces whose VirtualServers may join the group. `["*"]`: every namespace. Empty:
    /// none (the group serves nothing).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 256))]
    #[schemars(inner(length(min = 1, max = 63)))]
    pub allowed_namespaces: Vec<String>,

    /// HTTPS: the group terminates TLS with one certificate per host (SNI). Without it the
    /// group is plain HTTP and its VirtualServers may not have `tls`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls: Option<ListenerGroupTls>,

    /// With `tls`: what plain HTTP on port 80 of the address does. `redirect` (default) answers
    /// with a redirect to HTTPS, `allow` serves the same hosts and paths over HTTP, `none`
    /// leaves port 80 alone.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub http_traffic: Option<HttpTraffic>,
}

/// TLS of a listener group.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct ListenerGroupTls {
    /// The certificate for clients that send no server name or one no VirtualServer of the
    /// group serves: a `kubernetes.io/tls` Secret (its namespace is required: the group is
    /// cluster-scoped). Without it, the oldest attached VirtualServer's certificate is the
    /// default.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default_certificate: Option<SecretReference>,
}

/// What a TLS listener group does with plain HTTP on port 80.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, schemars::JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum HttpTraffic {
    #[default]
    Redirect,
    Allow,
    None,
}

/// Observed state of a BigIpListenerGroup.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct BigIpListenerGroupStatus {
    /// `Programmed`: the shared virtual server is on the BIG-IP with every attached
    /// VirtualServer's hosts.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// VirtualServers whose hosts the shared virtual server serves.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attached: Option<i64>,
    /// `namespace/name` of each attached VirtualServer.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub attached_objects: Vec<String>,
}
