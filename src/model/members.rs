//! Resolution of a pool's Service reference into BIG-IP pool members.
//!
//! The rules, documented for users in docs/virtualserver.md ("Pool members"):
//!
//! - **nodeport**: nodes that are Ready, schedulable, not labelled
//!   `node.kubernetes.io/exclude-from-external-load-balancers` and matched by the operator's
//!   node label selector, at the Service port's nodePort. With `externalTrafficPolicy: Local`
//!   only the nodes hosting a ready endpoint of the Service (active) or only serving-but-
//!   terminating ones (draining), since kube-proxy on the other nodes drops the traffic.
//! - **cluster**: ready endpoints (active) and serving-but-terminating endpoints (draining) of
//!   the Service's EndpointSlices, at the slice's target port.
//! - Both: members are of the virtual address's family (IPv4 or IPv6); only when the Service
//!   has no member of that family at all are the other family's used.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::sync::Arc;

use crate::model::ServiceView;
use crate::model::{EndpointSliceView, SliceEndpoint};
use k8s_openapi::api::core::v1::{Node, ServicePort};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use super::labels::Selector;
use super::{MemberState, PoolMember, UnresolvedRef};
use crate::crd::PoolMemberType;

/// The label with which Kubernetes' service controller leaves a node out of external load
/// balancers; the operator honours it the same way (any value).
pub const EXCLUDE_FROM_LOAD_BALANCERS_LABEL: &str = "node.kubernetes.io/exclude-from-external-load-balancers";

/// IPv4 or IPv6.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AddressFamily {
    V4,
    V6,
}

impl AddressFamily {
    pub fn of(address: IpAddr) -> Self {
        match address {
            IpAddr::V4(_) => Self::V4,
            IpAddr::V6(_) => Self::V6,
        }
    }
}

/// What, besides the Service and the cluster, decides a pool's members.
#[derive(Debug, Clone, Copy)]
pub struct MemberRules<'a> {
    /// The virtual address's family: members are of it unless the Service has none of it.
    pub family: AddressFamily,
    /// Nodeport mode: only nodes whose labels match (the operator's `--node-label-selector`).
    pub node_selector: Option<&'a Selector>,
}

/// Finds the Service port a pool refers to, by number or by name.
pub fn find_service_port<'a>(service: &'a ServiceView, wanted: &IntOrString) -> Option<&'a ServicePort> {
    let ports = service.spec.as_ref()?.ports.as_ref()?;
    ports.iter().find(|p| match wanted {
        IntOrString::Int(number) => p.port == *number,
        IntOrString::String(name) => p.name.as_deref() == Some(name.as_str()),
    })
}

/// Pool members of one Service port in the given mode, sorted, one per address and port.
pub fn resolve_members(
    mode: PoolMemberType,
    service: &ServiceView,
    service_port: &ServicePort,
    slices: &[Arc<EndpointSliceView>],
    nodes: &[Arc<Node>],
    rules: &MemberRules<'_>,
) -> Result<Vec<PoolMember>, UnresolvedRef> {
    let candidates = match mode {
        PoolMemberType::Nodeport => {
            let node_port =
                service_port.node_port.and_then(|p| u16::try_from(p).ok()).filter(|p| *p != 0).ok_or_else(|| {
                    UnresolvedRef::NoNodePort {
                        service: service.metadata.name.clone().unwrap_or_default(),
                        port: service_port.port,
                        service_type: service
                            .spec
                            .as_ref()
                            .and_then(|s| s.type_.clone())
                            .unwrap_or_else(|| "ClusterIP".into()),
                    }
                })?;
            node_members(service, service_port, node_port, slices, nodes, rules.node_selector)
        }
        PoolMemberType::Cluster => slices.iter().flat_map(|slice| endpoint_members(slice, service_port)).collect(),
    };
    Ok(of_one_family(candidates, rules.family))
}

/// The candidates of the preferred family, or of the other one when there are none; sorted,
/// and one member per address and port, active before draining.
fn of_one_family(candidates: Vec<PoolMember>, preferred: AddressFamily) -> Vec<PoolMember> {
    let has_preferred = candidates.iter().any(|m| AddressFamily::of(m.address) == preferred);
    let mut members: Vec<PoolMember> =
        candidates.into_iter().filter(|m| (AddressFamily::of(m.address) == preferred) == has_preferred).collect();
    // `state` sorts last with Active first, so dedup keeps the active one of a pair.
    members.sort();
    members.dedup_by_key(|m| (m.address, m.port));
    members
}

/// Nodeport members: each eligible node's first InternalIP of each family.
fn node_members(
    service: &ServiceView,
    service_port: &ServicePort,
    node_port: u16,
    slices: &[Arc<EndpointSliceView>],
    nodes: &[Arc<Node>],
    node_selector: Option<&Selector>,
) -> Vec<PoolMember> {
    // externalTrafficPolicy Local: kube-proxy sends a node's nodePort traffic only to that
    // node's endpoints, so only nodes with endpoints may be members.
    let local_only = service.spec.as_ref().and_then(|s| s.external_traffic_policy.as_deref()) == Some("Local");
    let endpoint_nodes = local_only.then(|| endpoint_node_states(slices, service_port));
    nodes
        .iter()
        .filter(|node| node_is_eligible(node, node_selector))
        .filter_map(|node| {
            let state = match &endpoint_nodes {
                None => MemberState::Active,
                Some(states) => *states.get(node.metadata.name.as_deref()?)?,
            };
            Some((node, state))
        })
        .flat_map(|(node, state)| {
            let addresses = node_internal_ips(node);
            let first_of = |family| addresses.iter().copied().find(|a| AddressFamily::of(*a) == family);
            [first_of(AddressFamily::V4), first_of(AddressFamily::V6)]
                .into_iter()
                .flatten()
                .map(move |address| PoolMember { address, port: node_port, state, ratio: 0 })
        })
        .collect()
}

/// Node name → the best state of the Service's endpoints on it (active if any is ready).
fn endpoint_node_states<'a>(
    slices: &'a [Arc<EndpointSliceView>],
    service_port: &ServicePort,
) -> BTreeMap<&'a str, MemberState> {
    let mut states: BTreeMap<&str, MemberState> = BTreeMap::new();
    for slice in slices.iter().filter(|s| slice_target_port(s, service_port).is_some()) {
        for endpoint in slice.endpoints.iter().flatten() {
            if let (Some(node), Some(state)) = (endpoint.node_name.as_deref(), endpoint_state(endpoint)) {
                let best = states.entry(node).or_insert(state);
                *best = (*best).min(state);
            }
        }
    }
    states
}

/// A node takes nodeport traffic when it is Ready, schedulable, not excluded from load
/// balancers by its label, not the Node object representing a BIG-IP (BigIpTunnel), and
/// matched by the operator's node selector.
///
/// Cordoned (unschedulable) nodes are left out because cordoning is how a node is taken out of
/// service before it is drained or removed.
pub fn node_is_eligible(node: &Node, node_selector: Option<&Selector>) -> bool {
    let labels = node.metadata.labels.as_ref();
    node_is_ready(node)
        && !node.spec.as_ref().and_then(|s| s.unschedulable).unwrap_or(false)
        && !labels.is_some_and(|l| l.contains_key(EXCLUDE_FROM_LOAD_BALANCERS_LABEL))
        && !super::flannel::is_bigip_node(node)
        && node_selector.is_none_or(|selector| selector.matches(labels))
}

/// A node takes traffic when its Ready condition is True.
pub fn node_is_ready(node: &Node) -> bool {
    node.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|conds| conds.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
}

/// The node's first parseable InternalIP address.
pub fn node_internal_ip(node: &Node) -> Option<IpAddr> {
    node_internal_ips(node).first().copied()
}

/// The node's parseable InternalIP addresses, in the order the node lists them (a dual-stack
/// node has one of each family).
pub fn node_internal_ips(node: &Node) -> Vec<IpAddr> {
    node.status
        .as_ref()
        .and_then(|s| s.addresses.as_ref())
        .into_iter()
        .flatten()
        .filter(|a| a.type_ == "InternalIP")
        .filter_map(|a| a.address.parse().ok())
        .collect()
}

/// How an endpoint takes part in a pool: ready → active; serving but terminating → draining
/// (existing connections finish, new ones go elsewhere); otherwise not at all.
///
/// Absent conditions are read as the EndpointSliceView API specifies: `ready` and `serving` as
/// true, `terminating` as false.
fn endpoint_state(endpoint: &SliceEndpoint) -> Option<MemberState> {
    let conditions = endpoint.conditions.as_ref();
    let ready = conditions.and_then(|c| c.ready).unwrap_or(true);
    let serving = conditions.and_then(|c| c.serving).unwrap_or(true);
    let terminating = conditions.and_then(|c| c.terminating).unwrap_or(false);
    if ready {
        Some(MemberState::Active)
    } else if serving && terminating {
        Some(MemberState::Draining)
    } else {
        None
    }
}

/// The slice's port for the Service port. EndpointSliceView ports carry the Service port's name
/// (empty for a single unnamed port), so the match is by name. FQDN slices have no IP members.
fn slice_target_port(slice: &EndpointSliceView, service_port: &ServicePort) -> Option<u16> {
    if slice.address_type == "FQDN" {
        return None;
    }
    let wanted_name = service_port.name.as_deref().unwrap_or_default();
    slice
        .ports
        .as_ref()?
        .iter()
        .find(|p| p.name.as_deref().unwrap_or_default() == wanted_name)
        .and_then(|p| p.port)
        .and_then(|p| u16::try_from(p).ok())
}

/// Cluster members of a slice: its active and draining endpoints, at the slice's target port.
fn endpoint_members(slice: &EndpointSliceView, service_port: &ServicePort) -> Vec<PoolMember> {
    let Some(port) = slice_target_port(slice, service_port) else {
        return Vec::new();
    };
    slice
        .endpoints
        .iter()
        .flatten()
        .filter_map(|e| Some((e, endpoint_state(e)?)))
        .flat_map(|(e, state)| {
            e.addresses.iter().filter_map(|a| a.parse::<IpAddr>().ok()).map(move |address| PoolMember {
                address,
                port,
                state,
                ratio: 0,
            })
        })
        .collect()
}

#[cfg(test)]
#[path = "members_tests.rs"]
mod tests;
