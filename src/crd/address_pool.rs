//! The `BigIpAddressPool` custom resource: virtual addresses handed out to LoadBalancer
//! Services (IPAM), instead of hand-picked IPs.

use kube::{CustomResource, KubeSchema};
use serde::{Deserialize, Serialize};

use super::common::Condition;

/// Addresses the operator may give to LoadBalancer Services. Cluster-scoped.
#[allow(clippy::duplicated_attributes)]
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[kube(
    group = "bigip.operator.dev",
    version = "v1alpha1",
    kind = "BigIpAddressPool",
    status = "BigIpAddressPoolStatus",
    shortname = "bap",
    category = "bigip",
    doc = "A BigIpAddressPool: virtual addresses the operator allocates to LoadBalancer Services.",
    printcolumn(name = "Addresses", type_ = "string", json_path = ".status.total"),
    printcolumn(name = "Used", type_ = "integer", json_path = ".status.used"),
    printcolumn(name = "Free", type_ = "string", json_path = ".status.free"),
    printcolumn(name = "Auto", type_ = "boolean", json_path = ".spec.autoAssign"),
    printcolumn(
        name = "Exhausted",
        type_ = "string",
        json_path = ".status.conditions[?(@.type==\"Exhausted\")].status"
    ),
    printcolumn(name = "Age", type_ = "date", json_path = ".metadata.creationTimestamp")
)]
#[serde(rename_all = "camelCase")]
pub struct BigIpAddressPoolSpec {
    /// The addresses: CIDRs (`10.1.20.0/28`, `2001:db8::/120`; network and broadcast
    /// addresses of an IPv4 prefix longer than /31 are left out), ranges
    /// (`10.1.20.100-10.1.20.110`) or single addresses. IPv4 and IPv6 may be mixed.
    #[schemars(length(min = 1, max = 32))]
    #[schemars(inner(length(min = 1, max = 90)))]
    #[x_kube(validation = Rule::new("self.all(a, a.contains('-') || isCIDR(a) || isIP(a))").message("each entry must be a CIDR, an address, or a range first-last"))]
    pub addresses: Vec<String>,

    /// Services that name no pool (annotation `bigip.operator.dev/address-pool`) get their
    /// address from a pool with `autoAssign: true` (the oldest one that allows their
    /// namespace). Default true.
    #[serde(default = "default_true")]
    pub auto_assign: bool,

    /// Namespaces whose Services may take addresses from this pool. Empty: every namespace.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 256))]
    pub allowed_namespaces: Vec<String>,
}

fn default_true() -> bool {
    true
}

/// Observed state of a BigIpAddressPool.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct BigIpAddressPoolStatus {
    /// `Valid` (the addresses parse) and `Exhausted` (no address left).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// Addresses in the pool (a decimal string: an IPv6 prefix may hold more than fits in an
    /// integer).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub total: Option<String>,
    /// Addresses allocated to Services.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub used: Option<i64>,
    /// Addresses left (decimal string, like `total`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub free: Option<String>,
    /// The record of which Service holds which address: written with the pool's
    /// resourceVersion (optimistic concurrency), so no address is handed out twice, even by
    /// several operators, and allocations survive restarts and leader changes.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub allocations: Vec<AddressAllocation>,
}

/// One address held by one Service.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct AddressAllocation {
    pub address: String,
    /// `namespace/name` of the Service.
    pub service: String,
}
