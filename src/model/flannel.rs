//! flannel VXLAN, pure: what the BIG-IP's tunnel must hold (FDB records: each node's VTEP MAC
//! → its public IP; static ARP entries: each pool-member pod IP → the VTEP MAC of its node),
//! how to get there from what it holds (ARP `ipAddress` is immutable on BIG-IP, so a changed
//! MAC is a delete and a create), and the Node object that represents the BIG-IP to flannel.

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;
use std::sync::Arc;

use crate::model::EndpointSliceView;
use k8s_openapi::api::core::v1::{Node, NodeSpec, Taint};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

use crate::crd::VxlanTunnel;

/// flannel's annotations on a Node (kube-subnet-manager mode).
pub const BACKEND_DATA_ANNOTATION: &str = "flannel.alpha.coreos.com/backend-data";
pub const BACKEND_TYPE_ANNOTATION: &str = "flannel.alpha.coreos.com/backend-type";
pub const SUBNET_MANAGER_ANNOTATION: &str = "flannel.alpha.coreos.com/kube-subnet-manager";
pub const PUBLIC_IP_ANNOTATION: &str = "flannel.alpha.coreos.com/public-ip";
/// Label on the Node object that represents the BIG-IP; such nodes are never pool members.
pub const BIGIP_NODE_LABEL: &str = "bigip.operator.dev/bigip-node";
/// The taint that keeps pods off the BIG-IP's Node object.
pub const BIGIP_NODE_TAINT: &str = "bigip.operator.dev/bigip";

/// A MAC address, lower-case `xx:xx:xx:xx:xx:xx`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Mac(String);

impl Mac {
    pub fn parse(text: &str) -> Option<Self> {
        let parts: Vec<&str> = text.split(':').collect();
        let valid = parts.len() == 6 && parts.iter().all(|p| p.len() == 2 && p.chars().all(|c| c.is_ascii_hexdigit()));
        valid.then(|| Self(text.to_ascii_lowercase()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// One FDB record of the tunnel: frames for `mac` go to the VTEP at `endpoint`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct FdbRecord {
    pub mac: Mac,
    pub endpoint: IpAddr,
}

/// One static ARP entry: `address` (a pod IP) is reached at `mac` (its node's VTEP).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct ArpEntry {
    pub address: IpAddr,
    pub mac: Mac,
}

/// Why a node was left out (reported as an Event on the BigIpTunnel; every other node is
/// still programmed).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NodeProblem {
    #[error("node {node}: no {BACKEND_DATA_ANNOTATION} annotation (is flannel running there in vxlan mode?)")]
    NoBackendData { node: String },
    #[error("node {node}: {BACKEND_DATA_ANNOTATION} {value:?} holds no valid VtepMAC")]
    BadBackendData { node: String, value: String },
    #[error("node {node}: no usable address ({PUBLIC_IP_ANNOTATION} or an InternalIP)")]
    NoAddress { node: String },
}

/// A node's VTEP: its MAC and the address other VTEPs send to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Vtep {
    pub mac: Mac,
    pub address: IpAddr,
}

/// The VTEP of a node from flannel's annotations: `VtepMAC` from the backend data, the address
/// from `public-ip`, else the first InternalIP.
pub fn node_vtep(node: &Node) -> Result<Vtep, NodeProblem> {
    let name = node.metadata.name.clone().unwrap_or_default();
    let annotations = node.metadata.annotations.as_ref();
    let data = annotations
        .and_then(|a| a.get(BACKEND_DATA_ANNOTATION))
        .ok_or_else(|| NodeProblem::NoBackendData { node: name.clone() })?;
    let mac = serde_json::from_str::<serde_json::Value>(data)
        .ok()
        .and_then(|v| v.get("VtepMAC").and_then(|m| m.as_str()).and_then(Mac::parse))
        .ok_or_else(|| NodeProblem::BadBackendData { node: name.clone(), value: data.clone() })?;
    let address = annotations
        .and_then(|a| a.get(PUBLIC_IP_ANNOTATION))
        .and_then(|ip| ip.parse().ok())
        .or_else(|| super::members::node_internal_ip(node))
        .ok_or(NodeProblem::NoAddress { node: name })?;
    Ok(Vtep { mac, address })
}

/// Whether a Node is the one representing a BIG-IP (never a pool member, no FDB record).
pub fn is_bigip_node(node: &Node) -> bool {
    node.metadata.labels.as_ref().is_some_and(|l| l.contains_key(BIGIP_NODE_LABEL))
}

/// The desired FDB records (one per node with a valid VTEP, sorted) and the nodes left out.
pub fn fdb_records(nodes: &[Arc<Node>]) -> (Vec<FdbRecord>, Vec<NodeProblem>) {
    let mut records = Vec::new();
    let mut problems = Vec::new();
    for node in nodes.iter().filter(|n| !is_bigip_node(n)) {
        match node_vtep(node) {
            Ok(vtep) => records.push(FdbRecord { mac: vtep.mac, endpoint: vtep.address }),
            Err(problem) => problems.push(problem),
        }
    }
    records.sort();
    records.dedup();
    (records, problems)
}

/// The desired ARP entries: every address in `members` (the cluster-mode pool members the
/// operator programs) that an EndpointSliceView places on a node with a valid VTEP. Addresses
/// whose node is unknown or has no VTEP get no entry.
pub fn arp_entries(
    members: &BTreeSet<IpAddr>,
    slices: &[Arc<EndpointSliceView>],
    nodes: &[Arc<Node>],
) -> Vec<ArpEntry> {
    let vteps: BTreeMap<String, Mac> =
        nodes.iter().filter_map(|n| Some((n.metadata.name.clone()?, node_vtep(n).ok()?.mac))).collect();
    let mut entries: BTreeMap<IpAddr, Mac> = BTreeMap::new();
    for endpoint in slices.iter().flat_map(|s| s.endpoints.iter().flatten()) {
        let Some(mac) = endpoint.node_name.as_ref().and_then(|n| vteps.get(n)) else { continue };
        for address in endpoint.addresses.iter().filter_map(|a| a.parse::<IpAddr>().ok()) {
            if members.contains(&address) {
                entries.insert(address, mac.clone());
            }
        }
    }
    entries.into_iter().map(|(address, mac)| ArpEntry { address, mac }).collect()
}

/// The changes that make the BIG-IP's ARP entries `desired`. BIG-IP cannot change an
/// entry's address, and an entry whose MAC changed (the node rebooted and flannel made a new
/// VTEP) is deleted and created again, so traffic never stays on a stale MAC.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ArpPlan {
    pub delete: Vec<ArpEntry>,
    pub create: Vec<ArpEntry>,
}

impl ArpPlan {
    pub fn is_empty(&self) -> bool {
        self.delete.is_empty() && self.create.is_empty()
    }
}

/// Plans the ARP changes from `current` (what the BIG-IP holds among the entries this
/// operator manages) to `desired`.
pub fn plan_arp(current: &[ArpEntry], desired: &[ArpEntry]) -> ArpPlan {
    let current_by_address: BTreeMap<IpAddr, &Mac> = current.iter().map(|e| (e.address, &e.mac)).collect();
    let desired_by_address: BTreeMap<IpAddr, &Mac> = desired.iter().map(|e| (e.address, &e.mac)).collect();
    let mut plan = ArpPlan::default();
    for entry in current {
        if desired_by_address.get(&entry.address) != Some(&&entry.mac) {
            plan.delete.push(entry.clone());
        }
    }
    for entry in desired {
        if current_by_address.get(&entry.address) != Some(&&entry.mac) {
            plan.create.push(entry.clone());
        }
    }
    plan
}

/// The Node object that represents the BIG-IP to flannel: its VTEP in the flannel
/// annotations, its pod subnet, a NoSchedule taint (no pod lands on it) and the label that
/// keeps it out of every pool.
pub fn bigip_node(spec: &VxlanTunnel, vtep_mac: &Mac) -> Node {
    let annotations = BTreeMap::from([
        (BACKEND_DATA_ANNOTATION.to_string(), serde_json::json!({ "VtepMAC": vtep_mac.as_str() }).to_string()),
        (BACKEND_TYPE_ANNOTATION.to_string(), "vxlan".to_string()),
        (SUBNET_MANAGER_ANNOTATION.to_string(), "true".to_string()),
        (PUBLIC_IP_ANNOTATION.to_string(), spec.local_address.clone()),
    ]);
    Node {
        metadata: ObjectMeta {
            name: Some(spec.node_name.clone()),
            annotations: Some(annotations),
            labels: Some(BTreeMap::from([(BIGIP_NODE_LABEL.to_string(), "true".to_string())])),
            ..ObjectMeta::default()
        },
        spec: Some(NodeSpec {
            pod_cidr: Some(spec.pod_subnet.clone()),
            pod_cidrs: Some(vec![spec.pod_subnet.clone()]),
            taints: Some(vec![Taint {
                key: BIGIP_NODE_TAINT.to_string(),
                effect: "NoSchedule".to_string(),
                value: Some("true".to_string()),
                time_added: None,
            }]),
            unschedulable: Some(true),
            ..NodeSpec::default()
        }),
        status: None,
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn node(name: &str, annotations: serde_json::Value, internal_ip: Option<&str>) -> Arc<Node> {
        let addresses: Vec<serde_json::Value> =
            internal_ip.iter().map(|ip| json!({"type": "InternalIP", "address": ip})).collect();
        Arc::new(
            serde_json::from_value(json!({
                "metadata": {"name": name, "annotations": annotations},
                "status": {"addresses": addresses},
            }))
            .expect("node"),
        )
    }

    fn flannel(mac: &str) -> serde_json::Value {
        json!({ BACKEND_DATA_ANNOTATION: format!("{{\"VtepMAC\":\"{mac}\"}}"), BACKEND_TYPE_ANNOTATION: "vxlan" })
    }

    fn slice(endpoints: &[(&str, &str)]) -> Arc<EndpointSliceView> {
        let endpoints: Vec<serde_json::Value> =
            endpoints.iter().map(|(ip, node)| json!({"addresses": [ip], "nodeName": node})).collect();
        Arc::new(
            serde_json::from_value(json!({"metadata": {"name": "s"}, "addressType": "IPv4", "endpoints": endpoints}))
                .expect("slice"),
        )
    }

    fn ip(text: &str) -> IpAddr {
        text.parse().expect("ip")
    }

    fn mac(text: &str) -> Mac {
        Mac::parse(text).expect("mac")
    }

    /// k8s-bigip-ctlr's own fixture (golden/vxlan-fdb-records.json, the flannel case): a node
    /// with backend data and an InternalIP becomes one record.
    #[test]
    fn a_flannel_node_becomes_an_fdb_record_as_k8s_bigip_ctlr_wrote_it() {
        let nodes = [node("flannelNode", flannel("12:ab:34:cd:56:ef"), Some("127.0.0.10"))];
        let (records, problems) = fdb_records(&nodes);
        assert!(problems.is_empty());
        assert_eq!(records, [FdbRecord { mac: mac("12:ab:34:cd:56:ef"), endpoint: ip("127.0.0.10") }]);
    }

    #[test]
    fn public_ip_wins_bad_nodes_are_reported_and_the_bigip_node_is_skipped() {
        let mut with_public = flannel("AA:BB:CC:DD:EE:01");
        with_public[PUBLIC_IP_ANNOTATION] = json!("192.168.1.11");
        let mut bigip = (*node("bigip", flannel("02:00:00:00:00:99"), Some("192.168.1.254"))).clone();
        bigip.metadata.labels = Some(BTreeMap::from([(BIGIP_NODE_LABEL.to_string(), "true".to_string())]));
        let nodes = [
            node("a", with_public, Some("10.0.0.11")),
            node("b", json!({}), Some("10.0.0.12")),
            node("c", json!({ BACKEND_DATA_ANNOTATION: "{\"VtepMAC\":\"nope\"}" }), Some("10.0.0.13")),
            node("d", flannel("aa:bb:cc:dd:ee:04"), None),
            Arc::new(bigip),
        ];
        let (records, problems) = fdb_records(&nodes);
        assert_eq!(records, [FdbRecord { mac: mac("aa:bb:cc:dd:ee:01"), endpoint: ip("192.168.1.11") }]);
        assert_eq!(
            problems,
            [
                NodeProblem::NoBackendData { node: "b".into() },
                NodeProblem::BadBackendData { node: "c".into(), value: "{\"VtepMAC\":\"nope\"}".into() },
                NodeProblem::NoAddress { node: "d".into() },
            ]
        );
    }

    #[test]
    fn arp_entries_cover_only_the_members_on_nodes_with_a_vtep() {
        let nodes = [node("a", flannel("aa:aa:aa:aa:aa:01"), Some("10.0.0.1")), node("b", json!({}), Some("10.0.0.2"))];
        let slices = [slice(&[("10.244.1.5", "a"), ("10.244.1.6", "a"), ("10.244.2.7", "b"), ("10.244.9.9", "gone")])];
        let members: BTreeSet<IpAddr> = ["10.244.1.5", "10.244.2.7", "10.244.9.9"].iter().map(|a| ip(a)).collect();
        let entries = arp_entries(&members, &slices, &nodes);
        assert_eq!(entries, [ArpEntry { address: ip("10.244.1.5"), mac: mac("aa:aa:aa:aa:aa:01") }]);
    }

    #[test]
    fn a_changed_vtep_mac_deletes_and_recreates_the_arp_entries_of_its_pods() {
        let old = mac("aa:aa:aa:aa:aa:01");
        let new = mac("aa:aa:aa:aa:aa:77");
        let other = mac("bb:bb:bb:bb:bb:02");
        let current = [
            ArpEntry { address: ip("10.244.1.5"), mac: old.clone() },
            ArpEntry { address: ip("10.244.2.7"), mac: other.clone() },
            ArpEntry { address: ip("10.244.3.3"), mac: other.clone() },
        ];
        let desired = [
            ArpEntry { address: ip("10.244.1.5"), mac: new.clone() },
            ArpEntry { address: ip("10.244.2.7"), mac: other.clone() },
            ArpEntry { address: ip("10.244.4.4"), mac: other.clone() },
        ];
        let plan = plan_arp(&current, &desired);
        assert_eq!(
            plan.delete,
            [
                ArpEntry { address: ip("10.244.1.5"), mac: old },
                ArpEntry { address: ip("10.244.3.3"), mac: other.clone() }
            ]
        );
        assert_eq!(
            plan.create,
            [ArpEntry { address: ip("10.244.1.5"), mac: new }, ArpEntry { address: ip("10.244.4.4"), mac: other }]
        );
        assert!(plan_arp(&desired, &desired).is_empty(), "nothing to do when in step");
    }

    #[test]
    fn the_bigip_node_carries_flannel_annotations_a_taint_and_is_never_a_member() {
        let spec: VxlanTunnel = serde_json::from_value(json!({
            "localAddress": "192.168.1.254", "selfIp": "10.244.200.1/16", "podSubnet": "10.244.200.0/24"
        }))
        .expect("spec");
        let node = bigip_node(&spec, &mac("02:01:02:03:04:05"));
        assert_eq!(node.metadata.name.as_deref(), Some("bigip"));
        let annotations = node.metadata.annotations.clone().expect("annotations");
        assert_eq!(annotations[BACKEND_DATA_ANNOTATION], r#"{"VtepMAC":"02:01:02:03:04:05"}"#);
        assert_eq!(annotations[PUBLIC_IP_ANNOTATION], "192.168.1.254");
        assert_eq!(annotations[SUBNET_MANAGER_ANNOTATION], "true");
        let node_spec = node.spec.clone().expect("spec");
        assert_eq!(node_spec.pod_cidr.as_deref(), Some("10.244.200.0/24"));
        assert_eq!(node_spec.taints.expect("taints")[0].effect, "NoSchedule");
        assert!(is_bigip_node(&node));
        // Its own VTEP is read back like any node's, but it gets no FDB record.
        assert_eq!(node_vtep(&node).expect("vtep").address, ip("192.168.1.254"));
        assert!(fdb_records(&[Arc::new(node)]).0.is_empty());
        assert_eq!(spec.port, 8472, "flannel's VXLAN port by default");
        assert_eq!(spec.tunnel_name, "flannel_vxlan");
    }
}

#[cfg(test)]
mod member_tests {
    use super::*;

    /// Even if someone marks it Ready and schedulable, the BIG-IP's Node is never a pool member.
    #[test]
    fn the_bigip_node_is_never_eligible_as_a_pool_member() {
        let spec: VxlanTunnel = serde_json::from_value(serde_json::json!({
            "localAddress": "192.168.1.254", "selfIp": "10.244.200.1/16", "podSubnet": "10.244.200.0/24"
        }))
        .expect("spec");
        let mut node = bigip_node(&spec, &Mac::parse("02:01:02:03:04:05").expect("mac"));
        if let Some(spec) = node.spec.as_mut() {
            spec.unschedulable = Some(false);
        }
        node.status = serde_json::from_value(serde_json::json!({
            "conditions": [{"type": "Ready", "status": "True"}],
            "addresses": [{"type": "InternalIP", "address": "192.168.1.254"}],
        }))
        .expect("status");
        assert!(crate::model::members::node_is_ready(&node));
        assert!(!crate::model::members::node_is_eligible(&node, None));
        node.metadata.labels = None;
        assert!(crate::model::members::node_is_eligible(&node, None), "the label is what keeps it out");
    }
}
