//! The `BigIpTunnel` custom resource: how the BIG-IP joins the pod network (flannel VXLAN or
//! Calico BGP), so that cluster-mode pool members (pod IPs) are reachable.

use kube::{CustomResource, KubeSchema};
use serde::{Deserialize, Serialize};

use super::common::Condition;

/// The BIG-IP's place in the pod network. Cluster-scoped: one per BIG-IP.
#[allow(clippy::duplicated_attributes)]
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[kube(
    group = "bigip.operator.dev",
    version = "v1alpha1",
    kind = "BigIpTunnel",
    status = "BigIpTunnelStatus",
    shortname = "btun",
    category = "bigip",
    doc = "A BigIpTunnel: the BIG-IP joins the pod network through flannel VXLAN or Calico BGP.",
    printcolumn(name = "Mode", type_ = "string", json_path = ".spec.mode"),
    printcolumn(
        name = "Programmed",
        type_ = "string",
        json_path = ".status.conditions[?(@.type==\"Programmed\")].status"
    ),
    printcolumn(name = "FDB", type_ = "integer", json_path = ".status.fdbEntries"),
    printcolumn(name = "ARP", type_ = "integer", json_path = ".status.arpEntries"),
    printcolumn(name = "VTEP-MAC", type_ = "string", json_path = ".status.vtepMac"),
    printcolumn(name = "Age", type_ = "date", json_path = ".metadata.creationTimestamp")
)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("self.mode == 'vxlan' ? has(self.vxlan) && !has(self.bgp) : has(self.bgp) && !has(self.vxlan)").message("mode vxlan needs the vxlan section, mode bgp the bgp section (and not the other)"))]
pub struct BigIpTunnelSpec {
    /// `vxlan` (flannel) or `bgp` (Calico routed mode). Cannot be changed: what the old mode
    /// programmed is removed only when the BigIpTunnel is deleted.
    #[x_kube(validation = Rule::new("self == oldSelf").message("mode cannot be changed; create another BigIpTunnel and delete this one"))]
    pub mode: TunnelMode,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vxlan: Option<VxlanTunnel>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bgp: Option<BgpPeering>,
}

#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Hash, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum TunnelMode {
    Vxlan,
    Bgp,
}

/// flannel VXLAN: a tunnel and self IP on the BIG-IP, and a Node object that makes flannel
/// route the BIG-IP's subnet to it.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("has(self.etcd) == has(oldSelf.etcd)").message("etcd mode cannot be switched on or off; create another BigIpTunnel and delete this one"))]
pub struct VxlanTunnel {
    /// Name of the BIG-IP tunnel (in /Common). Default `flannel_vxlan`. Cannot be changed.
    #[serde(default = "default_tunnel_name")]
    #[x_kube(validation = Rule::new("self == oldSelf").message("tunnelName cannot be changed; create another BigIpTunnel and delete this one"))]
    #[schemars(length(min = 1, max = 63), regex(pattern = r"^[A-Za-z][0-9A-Za-z_.-]*$"))]
    pub tunnel_name: String,
    /// UDP port of the VXLAN profile; flannel uses 8472.
    #[serde(default = "default_vxlan_port")]
    #[schemars(range(min = 1, max = 65535))]
    pub port: i32,
    /// The BIG-IP's VTEP address (its address the nodes reach), written to the BIG-IP Node's
    /// `flannel.alpha.coreos.com/public-ip`.
    #[x_kube(validation = Rule::new("isIP(self)").message("localAddress must be an IP address"))]
    #[schemars(length(max = 45))]
    pub local_address: String,
    /// The BIG-IP's self IP in the pod network with the cluster network's mask, e.g.
    /// `10.244.200.1/16`.
    #[x_kube(validation = Rule::new("isCIDR(self)").message("selfIp must be an address with the pod network's mask, e.g. 10.244.200.1/16"))]
    #[schemars(length(max = 49))]
    pub self_ip: String,
    /// The pod subnet flannel routes to the BIG-IP (the BIG-IP Node's `spec.podCIDR`), e.g.
    /// `10.244.200.0/24`; it must not overlap any node's.
    #[x_kube(validation = Rule::new("isCIDR(self)").message("podSubnet must be a CIDR such as 10.244.200.0/24"))]
    #[schemars(length(max = 49))]
    pub pod_subnet: String,
    /// Name of the Node object that represents the BIG-IP to flannel. Default `bigip`. Cannot
    /// be changed.
    #[serde(default = "default_node_name")]
    #[x_kube(validation = Rule::new("self == oldSelf").message("nodeName cannot be changed; create another BigIpTunnel and delete this one"))]
    #[schemars(length(min = 1, max = 253))]
    pub node_name: String,
    /// flannel's etcd mode (flannel without `--kube-subnet-manager`): the nodes' VTEPs come
    /// from flannel's subnet leases in etcd, and the BIG-IP's lease is written there, instead
    /// of the Node object. Leave out for kube-subnet-manager mode.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub etcd: Option<FlannelEtcd>,
}

/// Where flannel keeps its network configuration in etcd (v3 API).
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct FlannelEtcd {
    /// etcd client URLs, e.g. `https://10.0.0.5:2379`; tried in order.
    #[schemars(length(min = 1, max = 10))]
    #[x_kube(validation = Rule::new("self.all(e, e.startsWith('http://') || e.startsWith('https://'))").message("etcd endpoints must be http:// or https:// URLs"))]
    pub endpoints: Vec<String>,
    /// flannel's `--etcd-prefix`. Default `/coreos.com/network`.
    #[serde(default = "default_etcd_prefix")]
    #[x_kube(validation = Rule::new("self.startsWith('/') && !self.endsWith('/')").message("prefix must start with / and not end with /"))]
    #[schemars(length(min = 2, max = 253))]
    pub prefix: String,
    /// A Secret (`namespace/name`) with `ca.crt` (the etcd CA) and, for client certificate
    /// authentication, `tls.crt` and `tls.key`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls_secret: Option<SecretReference>,
}

/// A Secret by namespace and name.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, schemars::JsonSchema)]
pub struct SecretReference {
    #[schemars(length(min = 1, max = 63))]
    pub namespace: String,
    #[schemars(length(min = 1, max = 253))]
    pub name: String,
}

fn default_etcd_prefix() -> String {
    "/coreos.com/network".into()
}

/// Calico BGP: the BIG-IP peers with the selected nodes.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct BgpPeering {
    /// The BIG-IP's AS number.
    #[schemars(range(min = 1, max = 4294967294u32))]
    pub local_as: u32,
    /// The nodes' AS number (Calico's, 64512 by default).
    #[schemars(range(min = 1, max = 4294967294u32))]
    pub peer_as: u32,
    /// Peer only with nodes matching this label selector; empty: every node.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node_selector: Option<String>,
    /// Which routes the BIG-IP accepts from the nodes, first match decides; a route matching
    /// none is refused. Empty: every route is accepted. IPv4 only.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 100))]
    pub route_filters: Vec<RouteFilter>,
}

/// One inbound route filter: routes inside `prefix` whose prefix length is within
/// `minLength`..`maxLength` (default: exactly the prefix's own length).
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("!has(self.minLength) || !has(self.maxLength) || self.minLength <= self.maxLength").message("minLength must not exceed maxLength"))]
#[x_kube(validation = Rule::new("!isCIDR(self.prefix) || !has(self.minLength) || self.minLength >= cidr(self.prefix).prefixLength()").message("minLength must be at least the prefix's own length"))]
pub struct RouteFilter {
    /// An IPv4 prefix, e.g. `10.244.0.0/16`.
    #[x_kube(validation = Rule::new("isCIDR(self) && cidr(self).ip().family() == 4").message("prefix must be an IPv4 CIDR such as 10.244.0.0/16"))]
    #[schemars(length(max = 18))]
    pub prefix: String,
    /// `permit` (default) or `deny`.
    #[serde(default)]
    pub action: RouteFilterAction,
    /// Shortest prefix length accepted inside `prefix`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0, max = 32))]
    pub min_length: Option<u8>,
    /// Longest prefix length accepted inside `prefix` (e.g. 26 for Calico's /26 blocks).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0, max = 32))]
    pub max_length: Option<u8>,
}

#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum RouteFilterAction {
    #[default]
    Permit,
    Deny,
}

impl RouteFilterAction {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Permit => "permit",
            Self::Deny => "deny",
        }
    }
}

fn default_tunnel_name() -> String {
    "flannel_vxlan".into()
}

fn default_vxlan_port() -> i32 {
    8472
}

fn default_node_name() -> String {
    "bigip".into()
}

/// Observed state of a BigIpTunnel.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct BigIpTunnelStatus {
    /// Accepted, Programmed and Ready.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// FDB records on the tunnel (one per node).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fdb_entries: Option<i32>,
    /// Static ARP entries (one per pool-member pod IP).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub arp_entries: Option<i32>,
    /// The MAC address of the BIG-IP's tunnel (its VTEP).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vtep_mac: Option<String>,
    /// The BIG-IP's software version, as it reported it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bigip_version: Option<String>,
}
