//! The `VirtualServer` custom resource: an L7 (HTTP) virtual server on the BIG-IP.

use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use kube::{CustomResource, KubeSchema};
use serde::{Deserialize, Serialize};

use super::common::{Condition, HealthMonitor, LoadBalancingMode, PoolMemberType, SnatMode};

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
#[x_kube(validation = Rule::new("!has(self.defaultPool) || self.pools.exists(p, p.name == self.defaultPool)").message("defaultPool must name one of the pools"))]
pub struct VirtualServerSpec {
    /// IPv4 or IPv6 address the BIG-IP listens on (the virtual address), e.g. `10.1.10.80`.
    #[x_kube(validation = Rule::new("isIP(self)").message("virtualAddress must be an IPv4 or IPv6 address"))]
    #[schemars(length(max = 45))]
    pub virtual_address: String,

    /// TCP port of the virtual server, 1-65535.
    #[schemars(range(min = 1, max = 65535))]
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

    /// Source address translation: `automap` (default; the BIG-IP uses its self IPs) or
    /// `none` (the pods must route replies back through the BIG-IP).
    #[serde(default)]
    pub snat: SnatMode,

    /// How pool members are found for this virtual server, overriding the operator-wide
    /// `--pool-member-type`: `nodeport` (every Ready node's InternalIP and the Service's
    /// nodePort) or `cluster` (pod IPs from EndpointSlices).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pool_member_type: Option<PoolMemberType>,
}

/// A pool: the endpoints of one Service port, with its load-balancing mode and health monitors.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Pool {
    /// Name of the pool, unique within the VirtualServer: a lower-case letter, then lower-case
    /// letters, digits and `-`.
    #[schemars(length(min = 1, max = 63), regex(pattern = r"^[a-z]([-a-z0-9]*[a-z0-9])?$"))]
    pub name: String,

    /// Name of the Service, in the VirtualServer's namespace, whose endpoints form the pool.
    #[schemars(length(min = 1, max = 63))]
    pub service: String,

    /// The Service port: its number (`port`, not `targetPort`) or its name.
    pub service_port: IntOrString,

    /// BIG-IP load-balancing mode. Defaults to `round-robin`.
    #[serde(default)]
    pub load_balancing_mode: LoadBalancingMode,

    /// Health monitors; a member is up only when every monitor says so.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 8))]
    pub monitors: Vec<HealthMonitor>,
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
    /// Number of pool members programmed, over all pools.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub members: Option<i32>,
    /// The metadata.generation that this status describes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
}
